// sink_cases.mjs: the end-to-end cases every table-like destination sink must pass (the
// tests/node/sink_<name>.test.mjs files call sinkCases with their server and reader):
//   1. a BaseAndStream run converges: the destination equals the source (read with the Node.js
//      SDK) row by row and type by type;
//   2. the same with three kill -9 of lunnel at seeded random moments;
//   3. the server stopped mid-run: batches fail with the server's (client library's) message,
//      no password of the DSN in any log line, nothing is checkpointed past the failed batches
//      (lunnel is killed while the server is down and a new run resumes from the checkpoints:
//      a checkpoint taken past them would lose their changes), and after the server is back
//      everything arrives.
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { announceSeed, sourceDir, startEmulator, startRun, tempDir, waitFor } from '../../harness/index.mjs';
import { killAll, track } from './ids.mjs';
import { createSource, killRepeatedly, rng, waitConverged, writeBase, writeStream } from './replica.mjs';

// opts: { name (table prefix), label (in test titles), script (examples/...), start() -> server, destroy(server),
//   custom(server, table, {secret}) -> --custom object, dump(server, table, c, src) -> Map,
//   count(server, table) -> number, failure: RegExp of the failed-batch log line,
//   stop(server), restart(server), extra(rows, server, table) for sink-specific checks }
export function sinkCases(o) {
  const script = path.join(sourceDir, o.script);
  let emu, c, server;
  before(async () => {
    emu = await startEmulator();
    c = emu.client();
    server = await o.start();
  });
  after(async () => { await killAll(); await emu?.stop(); if (server) await o.destroy(server); });

  const run = (src, tunnel, create, dst, extra = {}) => track(startRun(emu, {
    table: src, tunnel, create, dir: tempDir(), script, custom: o.custom(server, dst, extra),
  }));
  const stopClean = async (r) => {
    const e = await r.stop('SIGTERM');
    assert.equal(e.code, 0, r.stderr().slice(-2000));
  };

  test(`BaseAndStream into ${o.label}: the destination equals the source, row by row and type by type`, { timeout: 150000 }, async () => {
    const src = `${o.name}_src1`, dst = `${o.name}_copy1`;
    await createSource(c, src);
    await writeBase(c, src, 1000);
    const r = run(src, 't1', 'BaseAndStream', dst);
    try {
      await waitFor(async () => { try { return (await o.count(server, dst)) === 1000; } catch { return false; } }, 90000, '1000 base rows in the destination');
      await writeStream(c, src, { ops: 1000, idMax: 1100 });
      const rows = await waitConverged(c, src, () => o.dump(server, dst, c, src), 90000);
      // the interesting cases are really in the data
      const all = [...rows.values()];
      assert.ok(all.some((v) => v.i && BigInt(v.i.slice(8)) > (1n << 53n)), 'an integer above 2^53');
      assert.ok(all.some((v) => v.s && v.s.includes("it's")) && all.some((v) => v.s && v.s.includes('line\nbreak')), 'quotes and newlines');
      assert.ok(all.some((v) => v.x) && all.some((v) => v.b) && all.some((v) => v.e1), 'binary, boolean, a column added by the stream');
      assert.ok(rows.size < 1100 && rows.size > 700, `deletes applied (${rows.size} rows)`);
      if (o.extra) await o.extra(rows, server, dst);
    } finally {
      await stopClean(r);
    }
  });

  test(`three kill -9 of lunnel at seeded random moments: ${o.label} still converges to the source`, { timeout: 200000 }, async () => {
    const src = `${o.name}_src2`, dst = `${o.name}_copy2`;
    const rand = rng(announceSeed()); // the harness's seed: printed, LUNNEL_TEST_SEED replays it
    await createSource(c, src);
    await writeBase(c, src, 1000, 3);
    let done = false;
    const writer = writeStream(c, src, { ops: 2000, idMax: 1100, seed: 4, stop: () => done });
    try {
      await killRepeatedly(() => run(src, 't2', 'BaseAndStream', dst), rand);
    } finally {
      await writer;
      done = true;
    }
    const r = run(src, 't2', 'BaseAndStream', dst);
    try {
      await waitConverged(c, src, () => o.dump(server, dst, c, src), 120000);
    } finally {
      await stopClean(r);
    }
  });

  test(`${o.label} stopped mid-run: batches fail with its message, nothing is checkpointed past them, all arrives after`, { timeout: 200000 }, async () => {
    const src = `${o.name}_src3`, dst = `${o.name}_copy3`;
    const secret = 'n0t-in-any-log';
    await createSource(c, src);
    const r1 = run(src, 't3', 'Stream', dst, { secret });
    await r1.waitLog(/connected|channel/i, 30000).catch(() => {});
    await writeStream(c, src, { ops: 300, idMax: 200, seed: 5 });
    await waitConverged(c, src, () => o.dump(server, dst, c, src), 90000, 'first part');
    await o.stop(server);
    await writeStream(c, src, { ops: 300, idMax: 200, seed: 6 });
    await waitFor(() => o.failure.test(r1.stderr()), 60000, `a failed batch in the log (${o.failure})`);
    await new Promise((res) => setTimeout(res, 1500)); // several checkpoint intervals pass
    assert.ok(!r1.stderr().includes(secret), 'the password never appears in the log');
    const e1 = await r1.stop('SIGKILL');
    assert.equal(e1.signal, 'SIGKILL');
    await o.restart(server);
    const r2 = run(src, 't3', undefined, dst, { secret });
    try {
      await waitConverged(c, src, () => o.dump(server, dst, c, src), 120000, 'second part after the restart');
      assert.ok(!r2.stderr().includes(secret));
    } finally {
      await stopClean(r2);
    }
  });
}
