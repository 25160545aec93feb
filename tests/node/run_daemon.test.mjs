// run_daemon.test.mjs: the daemon loop of `lunnel run` when the connection is lost: the
// emulator (durable, --data-dir) is killed with SIGKILL mid-stream and restarted on the same
// port; lunnel notices the lost client (failed heartbeats past the timeout, then
// OTSResourceGone or a refused Connect), stops its channels, reconnects after a random delay
// and carries on from the checkpoints: nothing missing.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { startEmulator, startRun, tempDir, waitFor } from '../harness/index.mjs';
import { allIds, countIds, idsScript, killAll, missingAndDuplicates, track } from './lib/ids.mjs';

let emu;
after(async () => { await killAll(); await emu?.stop(); });

test('connection lost (emulator killed and restarted): reconnect, nothing missing', { timeout: 90000 }, async () => {
  const data = tempDir('lunnel-daemon-data-'), dir = tempDir(), table = 'daemon', N = 10000;
  const base = ['--partitions', '2', '--data-dir', data, '--fsync', 'never'];
  emu = await startEmulator({ args: base });
  const port = emu.port;
  await emu.admin('load', { table, rows: 0, columns: 1, value_bytes: 8 });
  const run = startRun(emu, { table, tunnel: 't', create: 'Stream', dir, script: idsScript,
    args: ['--heartbeat-timeout', '1', '--reconnect-delay-max', '0.3', '--retry-window', '0.5'] });
  track(run);
  await run.waitLog(/to=running/);
  await emu.admin('load', { table, rows: N / 2, start: 0, columns: 1, value_bytes: 8, create: false });
  await waitFor(() => countIds(dir) > 0, 30000, 'progress');
  emu.child.kill('SIGKILL');
  await emu.exited;
  await run.waitLog(/client lost|connect failed/, 20000);
  emu = await startEmulator({ args: [...base, '--listen', `127.0.0.1:${port}`] });
  assert.equal(emu.port, port);
  await emu.admin('load', { table, rows: N / 2, start: N / 2, columns: 1, value_bytes: 8, create: false });
  await waitFor(() => missingAndDuplicates(allIds([dir]), N).missing.length === 0, 45000, `${N} rows across the outage`);
  assert.match(run.stderr(), /reconnecting/);
  assert.ok((run.stderr().match(/\] connected /g) || []).length >= 2, run.stderr().slice(-3000));
  assert.equal((await run.stop()).code, 0, run.stderr().slice(-3000));
});
