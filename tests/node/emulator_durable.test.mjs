// emulator_durable.test.mjs: lunnel-emulator --data-dir survives SIGKILL. Two writers (the
// official Node SDK, PutRow) and a tunnel reader (raw protocol client: heartbeat,
// GetCheckpoint, ReadRecords, Checkpoint after every batch) run while the emulator is killed
// with SIGKILL at a random moment, six times, one partition split on the way. After every
// restart: every acknowledged PutRow is in the table (GetRange), every channel's checkpoint
// is the last acknowledged one (or the one in flight at the kill, which the emulator may
// have committed without answering), and the reader carries on from there. A seventh kill
// leaves a torn record at the end of the log: the restart reports file and offset, cuts it
// off and still has everything acknowledged. At the end the reader has seen every
// acknowledged write through the tunnel.
import assert from 'node:assert/strict';
import { appendFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';

import { random, sleep, startEmulator, tablestore, tempDir } from '../harness/index.mjs';
import { decode, firstIntPk, num, str, tunnelClient } from './lib/tunnel_wire.mjs';

const TS = tablestore();
const { Long } = TS;
const call = (client, fn, params) =>
  new Promise((resolve, reject) => client[fn](params, (err, data) => (err ? reject(err) : resolve(data))));
const KILLS = 6;

async function allIds(client) {
  const ids = new Set();
  let next = [{ id: TS.INF_MIN }];
  for (let pages = 0; next && pages < 1000; pages++) {
    const r = await call(client, 'getRange', {
      tableName: 'kv', direction: TS.Direction.FORWARD, inclusiveStartPrimaryKey: next,
      exclusiveEndPrimaryKey: [{ id: TS.INF_MAX }], limit: 1000, maxVersions: 1,
    });
    for (const row of r.rows) ids.add(Number(row.primaryKey[0].value.toString()));
    next = r.nextStartPrimaryKey ? r.nextStartPrimaryKey.map(({ name, value }) => ({ [name]: value })) : null;
  }
  return ids;
}

// One writer: PutRow ids from the shared counter until stopped or the emulator dies.
async function writer(client, st, stop) {
  while (!stop.v) {
    const id = st.nextId++;
    try {
      await call(client, 'putRow', {
        tableName: 'kv', condition: new TS.Condition(TS.RowExistenceExpectation.IGNORE, null),
        primaryKey: [{ id: Long.fromNumber(id) }], attributeColumns: [{ v: `value-${id}` }],
      });
      st.acked.add(id);
    } catch {
      return; // killed under us: this id may or may not be stored; it was not acknowledged
    }
  }
}

// The tunnel reader, following the heartbeat contract (PROTOCOL.md section 3).
async function reader(emu, st, stop) {
  const tc = tunnelClient(emu);
  const T = st.tunnelId;
  // The reader's client id and channel views outlive the emulator process, as a real
  // worker's do: after a restart its heartbeat gets OTSResourceGone and it reconnects.
  let { cid, chans } = st.rd;
  const keep = () => { st.rd = { cid, chans }; };
  while (!stop.v) {
    keep();
    try {
      if (!cid) {
        const c = await tc.call('connect', { 1: T, 2: { 1: 30 } });
        assert.equal(c.status, 200, `connect: ${c.code}`);
        cid = str(c.msg, 1);
        chans = new Map();
      }
      const hb = await tc.call('heartbeat', {
        1: T, 2: cid, 3: [...chans].map(([id, c]) => ({ 1: id, 2: c.version, 3: c.status })),
      });
      if (hb.status === 410) { cid = null; st.reconnects++; continue; }
      if (hb.status !== 200 && stop.v) break;
      assert.equal(hb.status, 200, `heartbeat: ${hb.code}`);
      const next = new Map();
      for (const raw of hb.msg[1] || []) {
        const m = decode(raw);
        const id = str(m, 1), version = num(m, 2), status = num(m, 3);
        const old = chans.get(id);
        if (old && old.version > version) next.set(id, old);
        else next.set(id, { token: null, seq: 0, ...old, version, status });
      }
      chans = next;
      let progressed = false;
      for (const [id, c] of chans) {
        if (stop.v) break;
        if (c.status === 2) { c.status = 3; c.version++; continue; } // CLOSING -> CLOSE
        if (c.status !== 1) continue;
        if (!c.token) {
          const g = await tc.call('getcheckpoint', { 1: T, 2: cid, 3: id });
          if (g.status !== 200) continue;
          c.token = str(g.msg, 1);
          c.seq = num(g.msg, 2) + 1;
        }
        if (c.token === 'finished') { c.status = 4; c.version++; continue; }
        const rr = await tc.call('readrecords', { 1: T, 2: cid, 3: id, 4: c.token });
        if (rr.status !== 200) { if (rr.code === 'OTSResourceGone') cid = null; continue; }
        const recs = rr.msg[1] || [];
        for (const raw of recs) st.seen.add(firstIntPk(decode(raw)[2][0]));
        const token = str(rr.msg, 2);
        if (recs.length === 0 && token !== 'finished') continue;
        progressed = true;
        st.inflight.set(id, { token, seq: c.seq });
        const ck = await tc.call('checkpoint', { 1: T, 2: cid, 3: id, 4: token, 5: c.seq });
        if (ck.status === 200) {
          st.ckAcked.set(id, { token, seq: c.seq });
          st.checkpoints++;
          c.seq++;
          c.token = token;
        } else {
          c.token = null; // re-read the checkpoint (sequence mismatch, channel moved)
        }
      }
      if (!progressed) await sleep(10);
    } catch (e) {
      keep();
      if (stop.v || /ECONNRESET|ECONNREFUSED|socket hang up|no answer/.test(String(e.message))) return;
      throw e;
    }
  }
  keep();
}

// After a restart: writes and checkpoints are where they were acknowledged.
async function verify(emu, st, round) {
  const client = emu.client();
  const ids = await allIds(client);
  const missing = [...st.acked].filter((id) => !ids.has(id));
  assert.deepEqual(missing, [], `round ${round}: acknowledged writes missing after restart`);
  const tc = tunnelClient(emu);
  const c = await tc.call('connect', { 1: st.tunnelId, 2: { 1: 30 } });
  assert.equal(c.status, 200);
  const cid = str(c.msg, 1);
  const hb = await tc.call('heartbeat', { 1: st.tunnelId, 2: cid });
  assert.equal(hb.status, 200);
  const open = new Set((hb.msg[1] || []).map((raw) => str(decode(raw), 1)));
  let checked = 0;
  for (const [id, want] of st.ckAcked) {
    if (!open.has(id)) continue; // finished parent partitions are no longer handed out
    const g = await tc.call('getcheckpoint', { 1: st.tunnelId, 2: cid, 3: id });
    assert.equal(g.status, 200, `getcheckpoint ${id}: ${g.code}`);
    const got = { token: str(g.msg, 1), seq: num(g.msg, 2) };
    const fly = st.inflight.get(id);
    const ok = (got.token === want.token && got.seq === want.seq) ||
      (fly && got.token === fly.token && got.seq === fly.seq);
    assert.ok(ok, `round ${round}: channel ${id} checkpoint ${JSON.stringify(got)}, acknowledged ` +
      `${JSON.stringify(want)}, in flight ${JSON.stringify(fly)}`);
    if (fly && got.seq === fly.seq) st.ckAcked.set(id, fly);
    checked++;
  }
  assert.ok(st.ckAcked.size === 0 || checked > 0, `round ${round}: no checkpoint could be checked`);
  const sd = await tc.call('shutdown', { 1: st.tunnelId, 2: cid });
  assert.equal(sd.status, 200);
  st.checked += checked;
}

test('--data-dir: SIGKILL at random moments loses nothing acknowledged', { timeout: 60000 }, async () => {
  const dir = tempDir('lunnel-durable-');
  const fsync = process.env.LUNNEL_DURABLE_FSYNC || 'always'; // the test holds for all three
  // A small --compact-bytes: snapshots are written (and kills land) all along the test, even
  // when a loaded machine lets the writers get few rows in between kills.
  const args = ['--data-dir', dir, '--partitions', '2', '--batch-records', '50', '--fsync', fsync,
    '--compact-bytes', '8000'];
  const st = {
    nextId: 1, acked: new Set(), seen: new Set(), ckAcked: new Map(), inflight: new Map(),
    checkpoints: 0, checked: 0, reconnects: 0, tunnelId: null, rd: { cid: null, chans: new Map() },
  };
  const t0 = Date.now();
  let emu = await startEmulator({ args });
  try {
    await call(emu.client(), 'createTable', {
      tableMeta: { tableName: 'kv', primaryKey: [{ name: 'id', type: 'INTEGER' }] },
      reservedThroughput: { capacityUnit: { read: 0, write: 0 } },
      tableOptions: { timeToLive: -1, maxVersions: 1 },
      streamSpecification: { enableStream: true, expirationTime: 24 },
    });
    const cr = await tunnelClient(emu).call('create', { 1: { 1: 'kv', 3: 'durable', 4: 2 } });
    assert.equal(cr.status, 200, `create tunnel: ${cr.code}`);
    st.tunnelId = str(cr.msg, 1);

    for (let round = 1; round <= KILLS; round++) {
      const stop = { v: false };
      const client = emu.client();
      const before = { acked: st.acked.size, cks: st.checkpoints };
      const work = Promise.all([writer(client, st, stop), writer(client, st, stop), reader(emu, st, stop)]);
      if (round === 3) {
        await sleep(100);
        await emu.admin('split', { table: 'kv', partition: 'p0' });
      }
      // Kill at a random moment once this round has both written and checkpointed
      // something (bounded: a loaded machine gets up to 10 s to get there).
      const until = Date.now() + 10000;
      while (Date.now() < until && (st.acked.size === before.acked || st.checkpoints === before.cks)) await sleep(10);
      await sleep(Math.floor(random() * 500));
      emu.child.kill('SIGKILL');
      const ex = await emu.exited;
      assert.equal(ex.signal, 'SIGKILL');
      stop.v = true;
      await work;
      assert.ok(st.acked.size > before.acked, `round ${round}: no write was acknowledged`);
      emu = await startEmulator({ args });
      // stderr is a separate pipe: the restore line may arrive just after the ready line
      await emu.proc.waitLog(/restored/, 10000);
      assert.match(emu.stderr(), /data dir .* restored 1 tables/);
      await verify(emu, st, round);
      assert.ok(st.checkpoints > before.cks, `round ${round}: the reader never checkpointed`);
    }
    // A torn last write (a crash in the middle of write(2)): reported with file and offset,
    // cut off, and start-up goes on with everything acknowledged.
    emu.child.kill('SIGKILL');
    await emu.exited;
    const wal = readdirSync(dir).filter((f) => f.startsWith('wal.')).sort().pop();
    appendFileSync(path.join(dir, wal), Buffer.from([0x40, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7]));
    emu = await startEmulator({ args });
    await emu.proc.waitLog(/restored/, 10000);
    assert.match(emu.stderr(), new RegExp(`${wal.replace('.', '\\.')}: truncated record: offset \\d+: record of 64 bytes cut short`));
    assert.match(emu.stderr(), /damaged tail cut/);
    await verify(emu, st, 'torn tail');

    // The tunnel continues: the reader catches up with every acknowledged write.
    const stop = { v: false };
    const done = reader(emu, st, stop);
    const deadline = Date.now() + 20000;
    while (Date.now() < deadline && [...st.acked].some((id) => !st.seen.has(id))) await sleep(50);
    stop.v = true;
    await done;
    const unseen = [...st.acked].filter((id) => !st.seen.has(id));
    assert.deepEqual(unseen.slice(0, 10), [], `${unseen.length} acknowledged writes never came through the tunnel`);
    assert.ok(st.reconnects >= KILLS - 1, `the reader reconnected ${st.reconnects} times after ${KILLS} restarts`);
    const stats = await emu.admin('stats', {});
    assert.ok(stats.durable.snapshot_records > 0, `restored from a snapshot: ${JSON.stringify(stats.durable)} ${emu.stderr().slice(-1500)}`);
    const r = await emu.stop();
    assert.equal(r.code, 0, `emulator exit: ${JSON.stringify(r)}; stderr: ${emu.stderr()}`);
    console.log(`# ${KILLS} kills in ${Date.now() - t0} ms: ${st.acked.size} acknowledged writes, ` +
      `${st.checkpoints} checkpoints, ${st.checked} checkpoints verified after restarts, ` +
      `${st.reconnects} reconnects`);
  } finally {
    await emu.proc.stop('SIGKILL');
  }
});
