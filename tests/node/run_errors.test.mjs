// run_errors.test.mjs: `lunnel run` against service errors injected by lunnel-emulator's
// `faults` admin action with a chosen code (PROTOCOL.md section 1, error scopes):
//   - OTSPermissionDenied on ReadRecords is fatal: exit 3, one "lunnel run:" line naming it;
//   - OTSParameterInvalid once on ReadRecords concerns one channel: only that channel closes
//     (it is re-offered and re-read from its checkpoint), the others keep going, nothing is
//     missing and the process keeps running;
//   - OTSAuthFailed once with --credentials-command: the command is re-run once, the call
//     retried, the BaseData tunnel completes and --exit-when-done exits 0.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import {
  startEmulator, I, createTable, putRow, startRun, tempDir, waitFor, withTimeout
} from '../harness/index.mjs';
import { emulatorForFile } from './lib/file_emulator.mjs';
import { allIds, countIds, idsScript, killAll, missingAndDuplicates, readIds, track } from './lib/ids.mjs';

const suite = emulatorForFile({ args: ['--partitions', '4'] }, { cleanup: killAll });

async function writeRows(table, lo, hi) {
  for (let id = lo; id < hi; id++) await putRow(suite.c, table, id, 'p', { v: I(id) });
}

// The fault table as the emulator reports it after adding `rule`.
async function inject(rule) {
  const r = await suite.emu.admin('faults', rule);
  return r.faults[r.faults.length - 1];
}

test('faults admin: code and status are validated and reported', async () => {
  try {
    const f = await inject({ path: '/tunnel/list', code: 'OTSPermissionDenied', count: 0 });
    assert.equal(f.code, 'OTSPermissionDenied');
    assert.equal(f.status, 403, 'status defaults from the code');
    assert.equal(f.error_rate, 1, 'a code alone means every request');
    const g = await inject({ path: '/tunnel/list', code: 'OTSWhatever', status: 429, count: 0 });
    assert.equal(g.status, 429);
    await assert.rejects(suite.emu.admin('faults', { path: '/x', code: 'E', status: 302 }), /status/);
    const h = await inject({ path: '/tunnel/list', status: 200, count: 0 }); // an unparseable 200
    assert.equal(h.status, 200);
    await assert.rejects(suite.emu.admin('faults', { path: '/x', code: '' }), /code/);
  } finally {
    await suite.emu.admin('faults', { clear: true });
  }
});

test('OTSPermissionDenied on ReadRecords: exit 3 with one line naming the code', { timeout: 60000 }, async () => {
  const table = 'eperm', dir = tempDir();
  await createTable(suite.c, table);
  const run = startRun(suite.emu, { table, tunnel: 't', create: 'Stream', dir, script: idsScript });
  track(run);
  try {
    await run.waitLog(/to=running/);
    await writeRows(table, 0, 5);
    await waitFor(() => countIds(dir) >= 5, 30000, 'first rows');
    await inject({ path: '/tunnel/readrecords', code: 'OTSPermissionDenied', count: -1 });
    const r = await withTimeout(run.exited, 30000, 'exit on OTSPermissionDenied');
    if (r instanceof Error) await run.stop('SIGKILL');
    assert.equal(r.code, 3, run.stderr().slice(-3000));
    const lines = run.stderr().trim().split('\n').filter((l) => l.startsWith('lunnel run:'));
    assert.equal(lines.length, 1, `one clear line, got:\n${run.stderr().slice(-3000)}`);
    assert.match(lines[0], /OTSPermissionDenied.*\(exit 3\)$/);
  } finally {
    await suite.emu.admin('faults', { clear: true });
  }
});

test('OTSParameterInvalid once on ReadRecords closes only that channel; nothing missing', { timeout: 60000 }, async () => {
  const table = 'echan', dir = tempDir(), N = 80;
  await createTable(suite.c, table);
  const run = startRun(suite.emu, { table, tunnel: 't', create: 'Stream', dir, script: idsScript });
  track(run);
  await run.waitLog(/to=running/);
  await writeRows(table, 0, N / 2);
  await waitFor(() => countIds(dir) >= N / 2, 30000, 'first half');
  const before = readIds(dir);
  assert.equal(Object.keys(before).length, 4, 'four channels read');
  try {
    await inject({ path: '/tunnel/readrecords', code: 'OTSParameterInvalid', count: 1 });
    await waitFor(async () => (await suite.emu.admin('faults', {})).faults[0].remaining === 0, 20000, 'the fault to fire');
  } finally {
    await suite.emu.admin('faults', { clear: true });
  }
  await writeRows(table, N / 2, N);
  await waitFor(() => missingAndDuplicates(allIds([dir]), N).missing.length === 0, 30000, 'every row');
  // exactly one channel was reopened (a second "#open" segment); the process never stopped
  await waitFor(() => Object.values(readIds(dir)).some((segs) => segs.length === 2), 10000, 'the reopened channel');
  const after_ = readIds(dir);
  const reopened = Object.entries(after_).filter(([, segs]) => segs.length > 1).map(([ch]) => ch);
  assert.equal(reopened.length, 1, `only the failing channel closes: ${JSON.stringify(Object.fromEntries(
    Object.entries(after_).map(([k, v]) => [k, v.length])))}`);
  assert.equal(run.child.exitCode, null, 'still running');
  assert.match(run.stderr(), /OTSParameterInvalid/);
  assert.equal((await run.stop()).code, 0, run.stderr().slice(-3000));
  const { missing, extra } = missingAndDuplicates(allIds([dir]), N);
  assert.deepEqual(missing, []);
  assert.equal(extra, 0);
});

test('OTSAuthFailed once with --credentials-command: refreshed once, BaseData completes, exit 0', { timeout: 60000 }, async () => {
  const table = 'eauth', dir = tempDir(), N = 300;
  await suite.emu.admin('load', { table, rows: N, columns: 1, value_bytes: 8 });
  const calls = path.join(dir, 'calls');
  const script = path.join(dir, 'creds.sh');
  fs.writeFileSync(script, `#!/bin/sh\necho x >> '${calls}'\n` +
    `printf '{"AccessKeyId":"%s","AccessKeySecret":"%s"}\\n' '${suite.emu.accessKeyId}' '${suite.emu.accessKeySecret}'\n`);
  fs.chmodSync(script, 0o755);
  const ncalls = () => (fs.existsSync(calls) ? fs.readFileSync(calls, 'utf8').split('\n').filter(Boolean).length : 0);
  try {
    await inject({ path: '/tunnel/readrecords', code: 'OTSAuthFailed', count: 1 });
    const run = startRun(suite.emu, { table, tunnel: 'tb', create: 'BaseData', dir, script: idsScript,
      args: ['--exit-when-done', '--credentials-command', script] });
    track(run);
    const r = await withTimeout(run.exited, 45000, 'lunnel run --exit-when-done to exit');
    if (r instanceof Error) await run.stop('SIGKILL');
    assert.equal(r.code, 0, run.stderr().slice(-3000));
    const f = (await suite.emu.admin('faults', {})).faults[0];
    assert.equal(f.remaining, 0, 'the OTSAuthFailed was injected');
    assert.equal(ncalls(), 2, `credentials command: once at start, once after OTSAuthFailed\n${run.stderr().slice(-3000)}`);
    const { missing, extra } = missingAndDuplicates(allIds([dir]), N);
    assert.deepEqual(missing, []);
    assert.equal(extra, 0);
  } finally {
    await suite.emu.admin('faults', { clear: true });
  }
});

test('--memory-limit: a process() growing past it fails (exit 1 with --on-error stop); without it the run completes', { timeout: 60000 }, async () => {
  const table = 'emem', dir = tempDir();
  await suite.emu.admin('load', { table, rows: 20, columns: 1, value_bytes: 8 });
  // holds 48 MiB per batch, released when process() returns
  const script = path.join(dir, 'hog.lua');
  fs.writeFileSync(script, 'local M = {}\nfunction M.process(ctx, batch)\n  local t = {}\n' +
    '  for i = 1, 6 do t[i] = string.rep(string.char(64 + i), 8 * 1024 * 1024) end\n  return #t\nend\nreturn M\n');
  const limited = startRun(suite.emu, { table, tunnel: 'm1', create: 'BaseData', dir, script,
    args: ['--exit-when-done', '--memory-limit', String(32 * 1024 * 1024), '--on-error', 'stop', '--workers', '1'] });
  track(limited);
  const r1 = await withTimeout(limited.exited, 30000, 'exit past the memory limit');
  if (r1 instanceof Error) await limited.stop('SIGKILL');
  assert.equal(r1.code, 1, limited.stderr().slice(-3000));
  assert.match(limited.stderr(), /^lunnel run: .*memory.*\(exit 1\)$/m);
  const free = startRun(suite.emu, { table, tunnel: 'm2', create: 'BaseData', dir, script,
    args: ['--exit-when-done', '--on-error', 'stop', '--workers', '1'] });
  track(free);
  const r2 = await withTimeout(free.exited, 30000, 'exit when done');
  if (r2 instanceof Error) await free.stop('SIGKILL');
  assert.equal(r2.code, 0, free.stderr().slice(-3000));
});

test('ctx.trace_id is the x-ots-trace-id of the ReadRecords call that read the batch', { timeout: 60000 }, async () => {
  const temu = await startEmulator({ args: ['--partitions', '1', '--verbose'] });
  try {
    const table = 'etrace', dir = tempDir(), N = 30;
    await temu.admin('load', { table, rows: N, columns: 1, value_bytes: 8 });
    await temu.admin('tunnel_config', { batch_records: 10 }); // several batches
    const out = path.join(dir, 'traces.txt');
    const script = path.join(dir, 'trace.lua');
    fs.writeFileSync(script, 'local M = {}\nfunction M.process(ctx, batch)\n' +
      `  local f = assert(io.open(${JSON.stringify(out)}, "a"))\n` +
      '  f:write(tostring(ctx.trace_id), " ", ctx.record_count, "\\n")\n  f:close()\nend\nreturn M\n');
    const run = startRun(temu, { table, tunnel: 'tr', create: 'BaseData', dir, script, args: ['--exit-when-done'] });
    track(run);
    const r = await withTimeout(run.exited, 45000, 'exit when done');
    if (r instanceof Error) await run.stop('SIGKILL');
    assert.equal(r.code, 0, run.stderr().slice(-3000));
    const lines = fs.readFileSync(out, 'utf8').trim().split('\n').map((l) => l.split(' '));
    assert.equal(lines.reduce((a, [, n]) => a + Number(n), 0), N, 'every record in some batch');
    assert.ok(lines.length >= 3, `several batches: ${lines.length}`);
    const traces = lines.map(([t]) => t);
    for (const t of traces) assert.match(t, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/, `trace id format: ${t}`);
    assert.equal(new Set(traces).size, traces.length, `a new trace id per batch: ${traces}`);
    // each one is the trace id the emulator saw on a successful ReadRecords
    const log = temu.stderr();
    for (const t of traces) assert.match(log, new RegExp(`/tunnel/readrecords -> 200 \\(\\d+ bytes\\) trace=${t}\\n`), `${t} in the emulator's log`);
  } finally {
    await temu.stop();
  }
});
