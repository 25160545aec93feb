// run_channels_scale.test.mjs: `lunnel run` behind a proxy (tests/node/lib/proxy.mjs) that
// rewrites heartbeat replies of lunnel-emulator:
//   - every heartbeat lists 50,000 extra OPEN channels (the emulator rejects their
//     GetCheckpoint, so each is tried once and reported CLOSE): the real channels' records
//     all arrive, the fds stay under the connection pool's bound without raising the limit,
//     and SIGTERM starts the drain within a second and ends it; merge time, peak fds and
//     peak RSS are printed (recorded in bench/results/limits.md);
//   - heartbeats cut at a field boundary (only the first channel left) while the emulator's
//     x-ots-contentmd5 of the whole body is kept: the reply is retried, not used (no channel
//     is stopped and restarted: one "#open" segment per channel).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, test } from 'node:test';
import {
  startEmulator, I, createTable, putRow, startRun, tempDir, waitFor, withTimeout
} from '../harness/index.mjs';
import { allIds, idsScript, killAll, missingAndDuplicates, readIds, track } from './lib/ids.mjs';
import { startProxy } from './lib/proxy.mjs';
import { encode, decode } from './lib/tunnel_wire.mjs';

const N = 40;
let emu, c, proxy;
after(async () => { await killAll(); await proxy?.close(); await emu?.stop(); });

function fdCount(pid) {
  try { return fs.readdirSync(`/proc/${pid}/fd`).length; } catch { return 0; }
}
function hwmKiB(pid) {
  try { return Number(/VmHWM:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))[1]); } catch { return 0; }
}

test('a heartbeat of 50,000 channels: bounded fds, every real record, SIGTERM honoured', { timeout: 120000 }, async () => {
  emu = await startEmulator({ args: ['--partitions', '2'] });
  c = emu.client();
  await createTable(c, 'scale');
  for (let id = 0; id < N; id++) await putRow(c, 'scale', id, 'p', { v: I(id) });
  const FAKE = 50000;
  const fake = Buffer.concat(Array.from({ length: FAKE }, (_, i) => encode({ 1: { 1: `fake-${String(i).padStart(6, '0')}`, 2: 1, 3: 1 } })));
  let extended = 0;
  proxy = await startProxy(emu.port, (p, reply) => {
    if (p !== '/tunnel/heartbeat' || reply.status !== 200) return reply;
    extended++;
    return { ...reply, body: Buffer.concat([reply.body, fake]) };
  });
  const dir = tempDir();
  const r = startRun({ ...emu, endpoint: proxy.endpoint }, { table: 'scale', tunnel: 'sc', create: 'BaseAndStream', dir,
    script: idsScript, args: ['--heartbeat-interval', '0.5', '--heartbeat-timeout', '30', '--drain-timeout', '20'] });
  track(r);
  let peakFds = 0;
  const sampler = setInterval(() => { peakFds = Math.max(peakFds, fdCount(r.child.pid)); }, 20);
  try {
    await waitFor(() => extended > 0, 20000, 'the first big heartbeat');
    await waitFor(() => missingAndDuplicates(allIds([dir]), N).missing.length === 0, 60000, 'every real record');
    // the fake channels are tried and reported back (CLOSE) through the pool: wait for a
    // share of them, then stop with the rest still queued (the harder case for SIGTERM)
    const reported = () => (r.stderr().match(/channel reported channel=fake-/g) || []).length;
    const tr = Date.now(), r0 = reported();
    await waitFor(() => reported() >= 500, 60000, '500 fake channels reported');
    const rate = ((reported() - r0) / ((Date.now() - tr) / 1000)).toFixed(0);
    const merge = [...r.stderr().matchAll(/heartbeat merged channels=(\d+) ms=([\d.]+)/g)].map((m) => [Number(m[1]), Number(m[2])]);
    const hwm = hwmKiB(r.child.pid);
    const t0 = Date.now();
    r.child.kill('SIGTERM');
    await r.waitLog(/signal received, draining/, 1000);
    const tSignal = Date.now() - t0;
    const res = await withTimeout(r.exited, 25000, 'drained exit');
    const tExit = Date.now() - t0;
    assert.ok(!(res instanceof Error), String(res));
    assert.equal(res.code, 0, r.stderr().slice(-3000));
    console.log(`# 50,000 extra channels: merges (channels, ms): ${JSON.stringify(merge.slice(0, 5))}; peak fds ${peakFds}; ` +
      `peak RSS ${(hwm / 1024).toFixed(1)} MiB; SIGTERM -> draining ${tSignal} ms, -> exit ${tExit} ms; fake channels tried ${rate}/s`);
    assert.ok(peakFds < 100, `fds bounded by the pool (32 + 4 connections + the rest): ${peakFds}`);
    assert.ok(merge.length > 0, 'the big merge was logged with its time');
  } finally {
    clearInterval(sampler);
    if (r.child.exitCode === null) await r.stop('SIGKILL');
    await proxy.close();
    proxy = null;
    await emu.stop();
    emu = null;
  }
});

test('a heartbeat cut at a field boundary with the whole body\'s x-ots-contentmd5 is retried, not used', { timeout: 90000 }, async () => {
  emu = await startEmulator({ args: ['--partitions', '4', '--sign-tunnel-responses'] });
  c = emu.client();
  await createTable(c, 'md5t');
  for (let id = 0; id < N; id++) await putRow(c, 'md5t', id, 'p', { v: I(id) });
  const cutAt = new Set([20, 25, 30]);
  let cuts = 0;
  proxy = await startProxy(emu.port, (p, reply, n) => {
    if (p !== '/tunnel/heartbeat' || reply.status !== 200 || !cutAt.has(n)) return reply;
    const m = decode(reply.body);
    if (!m[1] || m[1].length < 2) { cutAt.add(n + 1); return reply; }
    assert.ok(reply.headers['x-ots-contentmd5'], 'the emulator signs tunnel replies');
    cuts++;
    return { ...reply, body: encode({ 1: m[1][0] }) }; // the first channel only: still parses
  });
  const dir = tempDir();
  const r = startRun({ ...emu, endpoint: proxy.endpoint }, { table: 'md5t', tunnel: 'md', create: 'BaseAndStream', dir,
    script: idsScript });
  track(r);
  try {
    await waitFor(() => cuts >= 3 && proxy.counts['/tunnel/heartbeat'] >= 36, 60000, 'three cut heartbeats and a few more');
    const { missing } = missingAndDuplicates(allIds([dir]), N);
    assert.deepEqual(missing, []);
    for (const [ch, segs] of Object.entries(readIds(dir)))
      assert.equal(segs.length, 1, `channel ${ch} was never stopped and reopened`);
    assert.doesNotMatch(r.stderr(), /channel reported channel=\S+ status=CLOSE/, 'no channel stopped by a cut reply');
  } finally {
    if (r.child.exitCode === null) await r.stop();
    await proxy.close();
    proxy = null;
    await emu.stop();
    emu = null;
  }
});
