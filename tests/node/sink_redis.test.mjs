// sink_redis.test.mjs: examples/to_redis.lua (lunnel.sinks.redis, hiredis) under `lunnel run`
// against lunnel-emulator and a real redis-server started here (free 127.0.0.1 port, scratch
// dir, persistence off). The source is written with the official Node.js SDK (base rows, then
// puts, partial updates with column deletes, deletes) and read back with it; the hashes are
// read with redis-cli; each must equal its source row field by field, every value in the
// documented text form of its type:
//   1. a BaseAndStream run converges;
//   2. the same with three kill -9 of lunnel at seeded random moments;
//   3. Redis stopped mid-run (SHUTDOWN SAVE, so a restart keeps what it had): batches fail
//      with the connection error, nothing is checkpointed past them (lunnel is killed while
//      Redis is down; a new run resumes from the checkpoints), all arrives after the restart.
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { startEmulator } from './lib/emulator.mjs';
import { killAll, track } from './lib/ids.mjs';
import { createSource, norm, rng, waitConverged, writeBase, writeStream, dumpSource } from './lib/replica.mjs';
import { sourceDir, startRun, tempDir, waitFor } from './lib/run.mjs';
import { startRedis } from './lib/servers.mjs';

const script = path.join(sourceDir, 'examples/to_redis.lua');

let emu, c, rd;
before(async () => {
  emu = await startEmulator();
  c = emu.client();
  rd = await startRedis();
});
after(async () => { await killAll(); await emu?.stop(); await rd?.destroy(); });

// The hashes under prefix as Map "id|k" -> {field: "TYPE:text"}: the key is decoded from
// prefix + r:key() ("i<id>s<len>:<k>"); each value is read back as the type the source has
// for that column (Redis keeps text), so a wrong text form shows as a difference.
async function dumpRedis(prefix, srcTable) {
  const src = await dumpSource(c, srcTable);
  const rows = new Map();
  for (const [kbuf, h] of rd.dump(`${prefix}*`)) {
    const m = kbuf.toString('utf8').slice(prefix.length).match(/^i(-?\d+)s(\d+):(.*)$/s);
    assert.ok(m, `key ${kbuf.toString('utf8')} has the documented form`);
    const key = `${m[1]}|${m[3]}`;
    const want = src.get(key) || {};
    const v = {};
    for (const [f, buf] of h) {
      const type = (want[f] || 'STRING:').split(':')[0];
      v[f] = norm(type, type === 'BINARY' ? buf.toString('hex') : buf.toString('utf8'));
    }
    rows.set(key, v);
  }
  return rows;
}

function run(table, tunnel, create, prefix, url = rd.url) {
  return track(startRun(emu, { table, tunnel, create, dir: tempDir(), script, custom: { url, prefix, timeout: 2 } }));
}

test('BaseAndStream into Redis hashes: every hash equals its source row', { timeout: 120000 }, async () => {
  const src = 'rd_src1';
  await createSource(c, src);
  await writeBase(c, src, 1000);
  const r = run(src, 'rd1', 'BaseAndStream', 'one:');
  try {
    await waitFor(() => rd.cli('EVAL', "return #redis.call('KEYS', 'one:*')", '0').trim() === '1000', 60000, '1000 hashes');
    await writeStream(c, src, { ops: 1000, idMax: 1100 });
    const rows = await waitConverged(c, src, () => dumpRedis('one:', src), 60000);
    const all = [...rows.values()];
    assert.ok(all.some((v) => v.i && BigInt(v.i.slice(8)) > (1n << 53n)), 'an integer above 2^53');
    assert.ok(all.some((v) => v.x), 'binary values');
    assert.ok(rows.size < 1100 && rows.size > 700, `deletes applied (${rows.size} hashes)`);
    assert.ok(/^(true|false)$/.test(rd.cli('HGET', 'one:i2s2:k2', 'b').trim()) || !rows.get('2|k2')?.b, 'booleans as true/false');
  } finally {
    const e = await r.stop('SIGTERM');
    assert.equal(e.code, 0, r.stderr().slice(-2000));
  }
});

test('three kill -9 of lunnel at seeded random moments: Redis still converges to the source', { timeout: 180000 }, async () => {
  const src = 'rd_src2';
  const rand = rng(7);
  await createSource(c, src);
  await writeBase(c, src, 1000, 3);
  let done = false;
  const writer = writeStream(c, src, { ops: 2000, idMax: 1100, seed: 4, stop: () => done });
  try {
    for (let kill = 0; kill < 3; kill++) {
      const r = run(src, 'rd2', 'BaseAndStream', 'two:');
      await r.waitLog(/connected|channel/i, 30000).catch(() => {});
      await new Promise((res) => setTimeout(res, 300 + Math.floor(rand() * 1500)));
      const e = await r.stop('SIGKILL');
      assert.equal(e.signal, 'SIGKILL');
    }
  } finally {
    await writer;
    done = true;
  }
  const r = run(src, 'rd2', 'BaseAndStream', 'two:');
  try {
    await waitConverged(c, src, () => dumpRedis('two:', src), 90000);
  } finally {
    const e = await r.stop('SIGTERM');
    assert.equal(e.code, 0, r.stderr().slice(-2000));
  }
});

test('Redis stopped mid-run: batches fail with the connection error, nothing is checkpointed past them, all arrives after', { timeout: 180000 }, async () => {
  const src = 'rd_src3';
  await createSource(c, src);
  const r1 = run(src, 'rd3', 'Stream', 'three:');
  await r1.waitLog(/connected|channel/i, 30000).catch(() => {});
  await writeStream(c, src, { ops: 300, idMax: 200, seed: 5 });
  await waitConverged(c, src, () => dumpRedis('three:', src), 60000, 'first part');
  await rd.stop();
  await writeStream(c, src, { ops: 300, idMax: 200, seed: 6 });
  await waitFor(() => /lunnel\.sinks\.redis: redis:\/\/127\.0\.0\.1:\d+\/0: cannot connect: .*(refused|Connection)/i.test(r1.stderr()), 60000, 'a failed batch in the log');
  await new Promise((res) => setTimeout(res, 1500)); // several checkpoint intervals
  const e1 = await r1.stop('SIGKILL');
  assert.equal(e1.signal, 'SIGKILL');
  await rd.start();
  const r2 = run(src, 'rd3', undefined, 'three:');
  try {
    await waitConverged(c, src, () => dumpRedis('three:', src), 90000, 'second part after the restart');
  } finally {
    const e = await r2.stop('SIGTERM');
    assert.equal(e.code, 0, r2.stderr().slice(-2000));
  }
});
