// run_drain_timeout.test.mjs: --drain-timeout bounds the graceful stop of `lunnel run` even when
// a process() call never returns in time (LuaJIT cannot interrupt it): one SIGTERM, the drain
// times out, lunnel exits 1 with one "lunnel run:" line, without waiting for the Lua worker.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  S, countRecords, createTable, putRow, startRun, tempDir, waitFor, withTimeout
} from '../harness/index.mjs';
import { emulatorForFile } from './lib/file_emulator.mjs';

const suite = emulatorForFile();

test('one SIGTERM with a stuck process(): exit 1 shortly after --drain-timeout', { timeout: 60000 }, async () => {
  const table = 'draintimeout', dir = tempDir();
  await createTable(suite.c, table);
  // every batch takes 60 s in the script: the drain cannot finish within 1 s
  const run = startRun(suite.emu, { table, tunnel: 'tdt', create: 'Stream', dir, custom: { sleep_ms: 60000 },
    args: ['--drain-timeout', '1s'] });
  await run.waitLog(/to=running/);
  await putRow(suite.c, table, 1, 'x', { s: S('slow') });
  await waitFor(() => countRecords(dir) >= 1, 20000, 'the slow batch to start');
  const t0 = Date.now();
  run.child.kill('SIGTERM');
  const r = await withTimeout(run.exited, 15000, 'exit after the drain timeout');
  if (r instanceof Error) await run.stop('SIGKILL');
  assert.ok(!(r instanceof Error), `still running 15 s after SIGTERM with --drain-timeout 1s:\n${run.stderr().slice(-1500)}`);
  assert.equal(r.code, 1, run.stderr().slice(-1500));
  assert.ok(Date.now() - t0 < 10000, `took ${Date.now() - t0} ms`);
  assert.match(run.stderr(), /drain timed out/);
  assert.match(run.stderr(), /lunnel run: drain not finished within --drain-timeout \(exit 1\)/);
});

test('a fatal error with a stuck process(): exit 3 shortly after --drain-timeout', { timeout: 60000 }, async () => {
  const table = 'draintimeoutfatal', dir = tempDir();
  await createTable(suite.c, table);
  const run = startRun(suite.emu, { table, tunnel: 'tdf', create: 'Stream', dir, custom: { sleep_ms: 60000 },
    args: ['--drain-timeout', '1s', '--heartbeat-interval', '0.2s'] });
  await run.waitLog(/to=running/);
  await putRow(suite.c, table, 1, 'x', { s: S('slow') });
  await waitFor(() => countRecords(dir) >= 1, 20000, 'the slow batch to start');
  // a fatal error on the client scope while the script is stuck: the stop must still be bounded
  await suite.emu.admin('faults', { path: '/tunnel/heartbeat', code: 'OTSPermissionDenied', count: 1 });
  const t0 = Date.now();
  const r = await withTimeout(run.exited, 15000, 'exit after the drain timeout');
  await suite.emu.admin('faults', { clear: true });
  if (r instanceof Error) await run.stop('SIGKILL');
  assert.ok(!(r instanceof Error), `still running 15 s after a fatal error with --drain-timeout 1s:\n${run.stderr().slice(-1500)}`);
  assert.equal(r.code, 3, run.stderr().slice(-1500));
  assert.ok(Date.now() - t0 < 10000, `took ${Date.now() - t0} ms`);
  assert.match(run.stderr(), /drain timed out/);
  assert.match(run.stderr(), /lunnel run: .*OTSPermissionDenied.*\(exit 3\)/);
});
