// run_faults.test.mjs: `lunnel run` keeps every change while the emulator misbehaves:
//   - 10% 503s, 5% dropped connections and latency on every path (mid-stream): nothing missing;
//   - a partition split mid-stream: the children are read only after the parent (by the
//     processing clock), every key's versions arrive in order, nothing missing;
//   - the emulator expires the client (OTSResourceGone): lunnel reconnects, nothing missing.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startEmulator, I, createTable, putRow, startRun, tempDir, waitFor } from '../harness/index.mjs';
import { allIds, countIds, idsScript, killAll, missingAndDuplicates, readIds, sleep, track, tunnelState } from './lib/ids.mjs';

let emu;
before(async () => {
  emu = await startEmulator({ args: ['--partitions', '4'] });
  // small batches: many reads, so the faults hit every kind of call many times
  await emu.admin('tunnel_config', { batch_records: 100 });
});
after(async () => { await killAll(); await emu?.stop(); });

// admin calls are not faulted, but keep them robust anyway
async function admin(action, body) {
  for (let i = 0; ; i++) {
    try { return await emu.admin(action, body); } catch (e) { if (i >= 5) throw e; await sleep(50); }
  }
}

async function complete(dirs, n, ms, what) {
  await waitFor(() => missingAndDuplicates(allIds(dirs), n).missing.length === 0, ms, what);
}

test('503s, dropped connections and latency on every path: nothing missing', { timeout: 90000 }, async () => {
  const table = 'flaky', dir = tempDir(), N = 20000;
  await admin('load', { table, rows: 0, columns: 1, value_bytes: 8 });
  const run = startRun(emu, { table, tunnel: 't', create: 'Stream', dir, script: idsScript });
  track(run);
  await run.waitLog(/to=running/);
  await admin('faults', { path: '*', error_rate: 0.1, drop_rate: 0.05, delay_ms: 3, count: -1 });
  await admin('load', { table, rows: N / 2, start: 0, columns: 1, value_bytes: 8, create: false });
  await waitFor(() => countIds(dir) > 0, 30000, 'progress under faults');
  await admin('load', { table, rows: N / 2, start: N / 2, columns: 1, value_bytes: 8, create: false });
  try {
    await complete([dir], N, 60000, `${N} rows under faults`);
    const st = await admin('tunnel_stats', {});
    const errors = Object.values(st.paths).reduce((a, p) => a + p.errors, 0);
    assert.ok(errors > 10, `faults were injected: ${JSON.stringify(st.paths)}`);
  } finally {
    await admin('faults', { clear: true });
  }
  assert.equal((await run.stop()).code, 0, run.stderr().slice(-3000));
  const { missing, extra } = missingAndDuplicates(allIds([dir]), N);
  assert.deepEqual(missing, []);
  assert.equal(extra, 0);
});

test('partition split mid-stream: children after their parent, per-key order kept', { timeout: 90000 }, async () => {
  const table = 'splitt', dir = tempDir(), KEYS = 60, ROUNDS = 3;
  const c = emu.client();
  await createTable(c, table);
  const run = startRun(emu, { table, tunnel: 't', create: 'Stream', dir, script: idsScript, custom: { stamp: true } });
  track(run);
  await run.waitLog(/to=running/);
  const write = async (round) => { for (let k = 0; k < KEYS; k++) await putRow(c, table, k, 's', { v: I(round) }); };
  await write(1);
  const split = await admin('split', { table, partition: 0 });
  await write(2);
  await admin('split', { table, partition: split.children[1] });
  await write(3);
  // every key's every version (a count alone could be reached by a re-delivery while a
  // version is still on its way)
  const versionsSeen = () => {
    const seen = new Set();
    for (const segs of Object.values(readIds(dir))) for (const sg of segs) for (const r of sg) seen.add(`${r.id}/${r.v}`);
    return seen.size;
  };
  await waitFor(() => versionsSeen() >= KEYS * ROUNDS, 45000, 'every version of every key');
  assert.equal((await run.stop()).code, 0, run.stderr().slice(-3000));
  // per key: versions 1..ROUNDS exactly, in processing-time order
  const byKey = new Map();
  const byCh = readIds(dir);
  for (const [ch, segs] of Object.entries(byCh)) for (const s of segs) for (const r of s) {
    if (!byKey.has(r.id)) byKey.set(r.id, []);
    byKey.get(r.id).push({ ...r, ch });
  }
  assert.equal(byKey.size, KEYS);
  for (const [k, recs] of byKey) {
    recs.sort((a, b) => a.t - b.t);
    assert.deepEqual(recs.map((r) => Number(r.v)), [1, 2, 3], `key ${k}: ${JSON.stringify(recs)}`);
  }
  // children after parent: every record of a child channel was processed after the parent's last
  const st = await tunnelState(emu, 't');
  const tun = st && st.table === table ? st : (await emu.admin('tunnels', {})).tunnels.find((t) => t.table === table);
  const parentOf = Object.fromEntries(tun.channels.filter((ch) => ch.parent).map((ch) => [ch.channel_id, ch.parent]));
  assert.ok(Object.keys(parentOf).length >= 4, JSON.stringify(tun.channels));
  const times = (ch) => (byCh[ch] || []).flat().map((r) => r.t);
  let checked = 0;
  for (const [child, parent] of Object.entries(parentOf)) {
    const ct = times(child), pt = times(parent);
    if (!ct.length || !pt.length) continue;
    assert.ok(Math.min(...ct) > Math.max(...pt), `${child} started before its parent ${parent} ended`);
    checked++;
  }
  assert.ok(checked >= 2, `child/parent pairs with records on both sides: ${checked}`);
});

test('client expired by the emulator: reconnect, nothing missing', { timeout: 60000 }, async () => {
  const table = 'expc', dir = tempDir(), N = 10000;
  await admin('load', { table, rows: 0, columns: 1, value_bytes: 8 });
  const run = startRun(emu, { table, tunnel: 't', create: 'Stream', dir, script: idsScript });
  track(run);
  await run.waitLog(/to=running/);
  await admin('load', { table, rows: N / 2, start: 0, columns: 1, value_bytes: 8, create: false });
  await waitFor(() => countIds(dir) > 0, 30000, 'progress');
  const tun = (await emu.admin('tunnels', {})).tunnels.find((t) => t.table === table);
  const ex = await admin('expire_client', { tunnel_id: tun.tunnel_id });
  assert.equal(ex.expired, 1);
  await admin('load', { table, rows: N / 2, start: N / 2, columns: 1, value_bytes: 8, create: false });
  await complete([dir], N, 45000, `${N} rows across the reconnect`);
  await run.waitLog(/reconnecting/);
  assert.match(run.stderr(), /connected.*\n(.*\n)*.*connected/, 'connected twice');
  assert.equal((await run.stop()).code, 0, run.stderr().slice(-3000));
});
