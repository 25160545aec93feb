// run_crash.test.mjs: at-least-once under crashes. A 100,000-change stream (the emulator's
// bulk loader, 4 partitions) is consumed by `lunnel run`, which is killed with SIGKILL at random
// moments 6 times and restarted each time. Checked against the emulator's acknowledged
// checkpoints (admin `tunnels`: records consumed per checkpoint, per channel), read after each
// kill:
//   - no change missing (every id 0..N-1 delivered);
//   - each channel's records arrive in stream order (ids grow within a partition's log), and
//     every run starts each channel exactly at the acknowledged checkpoint: a change is
//     delivered again only if it lies after the last acknowledged checkpoint.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startEmulator, startRun, tempDir, waitFor, random } from '../harness/index.mjs';
import { allIds, countIds, idsScript, killAll, missingAndDuplicates, readIds, sleep, track, tunnelState } from './lib/ids.mjs';

let emu;
before(async () => {
  emu = await startEmulator({ args: ['--partitions', '4'] });
  await emu.admin('tunnel_config', { batch_records: 200 });
});
after(async () => { await killAll(); await emu?.stop(); });

const N = 100000, KILLS = 6, CHUNK = N / 20;

test('kill -9 at random moments, 6 times, during a 100,000-change stream: nothing missing, duplicates only after the acknowledged checkpoint', { timeout: 150000 }, async () => {
  const table = 'crash', tunnel = 'tc';
  await emu.admin('load', { table, rows: 0, columns: 1, value_bytes: 16 });
  const runs = []; // {dir, acked: {channel: count at start}}
  let loaded = 0;
  const load = async () => {
    if (loaded >= N) return;
    await emu.admin('load', { table, rows: CHUNK, start: loaded, columns: 1, value_bytes: 16, create: false });
    loaded += CHUNK;
  };
  const acked = async () => {
    const st = await tunnelState(emu, tunnel);
    return st ? Object.fromEntries(st.channels.map((c) => [c.channel_id, c.count])) : {};
  };
  const args = ['--heartbeat-timeout', '1', '--checkpoint-interval', '0.1'];
  for (let k = 0; k <= KILLS; k++) {
    const dir = tempDir();
    const start = await acked();
    runs.push({ dir, start });
    if (process.env.LUNNEL_TEST_VERBOSE) console.log(`# run ${k} starts at ${JSON.stringify(start)}`);
    const run = startRun(emu, { table, tunnel, create: k === 0 ? 'Stream' : undefined, dir, script: idsScript, args });
    track(run);
    if (k === 0) await run.waitLog(/to=running/);
    for (let i = 0; i < 3; i++) await load(); // a backlog, so kills land mid-stream
    if (k < KILLS) {
      // a random moment after this run made some progress of its own
      const target = 1 + Math.floor(random() * 8000);
      await waitFor(() => countIds(dir) >= target ||
        (loaded >= N && missingAndDuplicates(allIds(runs.map((x) => x.dir)), N).missing.length === 0), 30000, `run ${k} progress`);
      await sleep(Math.floor(random() * 300));
      run.child.kill('SIGKILL');
      const r = await run.exited;
      assert.equal(r.signal, 'SIGKILL');
    } else {
      while (loaded < N) await load();
      await waitFor(() => missingAndDuplicates(allIds(runs.map((x) => x.dir)), N).missing.length === 0, 60000,
        'every change after the last restart');
      assert.equal((await run.stop()).code, 0, run.stderr().slice(-3000));
    }
  }
  const dirs = runs.map((x) => x.dir);
  const ids = allIds(dirs);
  const { missing, dups, extra } = missingAndDuplicates(ids, N);
  assert.deepEqual(missing, [], 'no change missing');
  assert.equal(extra, 0);
  // each channel's stream: the ids of that channel in increasing order (the loader writes ids in
  // order, a partition's log keeps it)
  const seq = {};
  for (const d of dirs) for (const [ch, segs] of Object.entries(readIds(d))) for (const s of segs) for (const r of s) (seq[ch] ||= new Set()).add(r.id);
  const pos = {};
  for (const [ch, set] of Object.entries(seq)) {
    const arr = [...set].sort((a, b) => a - b);
    pos[ch] = new Map(arr.map((id, i) => [id, i]));
  }
  let duplicates = 0;
  const delivered = {}; // channel -> highest position delivered so far (+1)
  runs.forEach(({ dir, start }, k) => {
    for (const [ch, segs] of Object.entries(readIds(dir))) {
      const ack = start[ch] ?? 0;
      segs.forEach((s, si) => {
        if (!s.length) return;
        const p0 = pos[ch].get(s[0].id);
        if (si === 0) assert.equal(p0, ack, `run ${k} ${ch}: starts at position ${p0}, acknowledged checkpoint ${ack}`);
        else assert.ok(p0 >= ack, `run ${k} ${ch}: a later segment starts at ${p0} before the checkpoint ${ack}`);
        s.forEach((r, i) => assert.equal(pos[ch].get(r.id), p0 + i, `run ${k} ${ch}: out of order at ${r.id}`));
        const hi = delivered[ch] ?? 0;
        duplicates += Math.max(0, Math.min(hi, p0 + s.length) - p0);
        delivered[ch] = Math.max(hi, p0 + s.length);
      });
    }
  });
  // every repeated delivery is one of those re-reads from an acknowledged checkpoint
  assert.equal(duplicates, ids.length - N, `${dups.length} ids delivered more than once`);
  const moved = runs.filter((r) => Object.values(r.start).some((c) => c > 0)).length;
  assert.ok(moved >= 3, `acknowledged checkpoints moved before at least 3 restarts (${moved})`);
  console.log(`# crash test: ${N} changes, ${KILLS} kills, ${duplicates} redelivered (all after an acknowledged checkpoint)`);
});
