// run_options.test.mjs: `lunnel run` options end to end against lunnel-emulator:
//   --max-channels N: never more than N channels processed at once, everything still arrives;
//   --commit manual: only ctx:commit() moves checkpoints (uncommitted batches come again);
//   --exit-when-done: exits 0 once every channel of a BaseData tunnel is TERMINATED;
//   --config FILE: a Lua file returning the same options (keys with _; custom as a table).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import {
  I, Model, S, countRecords, createTable, diff, putRow, readRecords, startRun,
  tempDir, waitFor, withTimeout
} from '../harness/index.mjs';
import { emulatorForFile } from './lib/file_emulator.mjs';

const suite = emulatorForFile();

// Highest number of channels between "to=running" and "to=done" at once, from the log.
function maxConcurrent(stderr) {
  let cur = 0, max = 0;
  for (const line of stderr.split('\n')) {
    if (!/\[channel\] channel state/.test(line)) continue;
    if (/ to=running /.test(line)) max = Math.max(max, ++cur);
    else if (/ to=done /.test(line) && !/ from=queued /.test(line)) cur--;
  }
  return max;
}

test('--max-channels 1 with --config and --exit-when-done: one channel at a time, all rows, exit 0', { timeout: 60000 }, async () => {
  const table = 'maxch', dir = tempDir();
  await createTable(suite.c, table);
  const model = new Model();
  for (let id = 0; id < 40; id++) await putRow(suite.c, table, id, 'm', { s: S(`r${id}`), i: I(id) }, model);
  const events = path.join(dir, 'events.txt');
  const cfg = path.join(dir, 'run.lua');
  fs.writeFileSync(cfg, `return {
    max_channels = 1,
    exit_when_done = true,
    heartbeat_interval = 0.1,
    custom = { dir = ${JSON.stringify(dir)}, events = ${JSON.stringify(events)} },
  }\n`);
  // command-line options win over the file, so custom comes only from the file here
  const run = startRun(suite.emu, { table, tunnel: 'tm', create: 'BaseData', dir, args: ['--config', cfg], noCustom: true });
  const r = await withTimeout(run.exited, 45000, 'exit when done');
  if (r instanceof Error) await run.stop('SIGKILL');
  assert.equal(r.code, 0, `exit ${JSON.stringify(r)}; stderr:\n${run.stderr().slice(-3000)}`);
  const recs = readRecords(dir);
  assert.deepEqual(diff(recs, model), []);
  assert.equal(recs.length, 40);
  assert.equal(maxConcurrent(run.stderr()), 1, run.stderr().slice(-3000));
  // the script saw open/shutdown strictly alternating: never two channels open at once
  const ev = fs.readFileSync(events, 'utf8').trim().split('\n');
  assert.equal(ev.length, 8, ev.join('\n'));
  ev.forEach((e, i) => assert.ok(e.startsWith(i % 2 === 0 ? 'open ' : 'shutdown '), ev.join('\n')));
  // without the limit the same tunnel shape runs channels in parallel (the check can fail)
  const dir2 = tempDir();
  await createTable(suite.c, 'maxch2');
  for (let id = 0; id < 40; id++) await putRow(suite.c, 'maxch2', id, 'm', { s: S(`r${id}`) });
  const run2 = startRun(suite.emu, { table: 'maxch2', tunnel: 'tm2', create: 'BaseData', dir: dir2, args: ['--exit-when-done'] });
  const r2 = await withTimeout(run2.exited, 45000, 'exit when done');
  assert.equal(r2.code, 0);
  assert.ok(maxConcurrent(run2.stderr()) > 1);
});

test('--commit manual: only ctx:commit() checkpoints', { timeout: 90000 }, async () => {
  const table = 'manual', dir = tempDir();
  await createTable(suite.c, table);
  const model = new Model();
  // run 1: manual, the script never commits
  const run1 = startRun(suite.emu, { table, tunnel: 'tman', create: 'Stream', dir, custom: { commit: 'none' }, args: ['--commit', 'manual'] });
  await run1.waitLog(/to=running/);
  for (let id = 0; id < 30; id++) await putRow(suite.c, table, id, 'c', { s: S(`a${id}`) }, model);
  await waitFor(() => countRecords(dir) >= 30, 30000, '30 records in run 1');
  let r = await run1.stop('SIGTERM');
  assert.equal(r.code, 0, run1.stderr().slice(-2000));
  assert.equal(countRecords(dir), 30);

  // run 2: manual, commits everything: the same 30 come again (nothing was committed)
  const dir2 = tempDir();
  const run2 = startRun(suite.emu, { table, tunnel: 'tman', dir: dir2, custom: { commit: 'all' }, args: ['--commit', 'manual'] });
  await waitFor(() => countRecords(dir2) >= 30, 30000, '30 records again in run 2');
  // let a checkpoint interval pass, then drain (the final checkpoint covers the rest anyway)
  r = await run2.stop('SIGTERM');
  assert.equal(r.code, 0, run2.stderr().slice(-2000));
  assert.deepEqual(diff(readRecords(dir2), model), [], 're-delivered exactly');
  assert.equal(countRecords(dir2), 30);

  // run 3: auto commit; only the 5 new rows arrive (run 2's commits moved the checkpoint)
  const dir3 = tempDir();
  const model3 = new Model();
  const run3 = startRun(suite.emu, { table, tunnel: 'tman', dir: dir3 });
  await run3.waitLog(/to=running/);
  for (let id = 100; id < 105; id++) await putRow(suite.c, table, id, 'c', { s: S(`b${id}`) }, model3);
  await waitFor(() => countRecords(dir3) >= 5, 30000, '5 records in run 3');
  r = await run3.stop('SIGTERM');
  assert.equal(r.code, 0);
  assert.deepEqual(diff(readRecords(dir3), model3), []);
  assert.equal(countRecords(dir3), 5);
});

test('--log-format json: every stderr line is a JSON object; one per channel state change', { timeout: 60000 }, async () => {
  const table = 'jsonlog', dir = tempDir();
  await createTable(suite.c, table);
  for (let id = 0; id < 10; id++) await putRow(suite.c, table, id, 'j', { s: S(`r${id}`) });
  const run = startRun(suite.emu, { table, tunnel: 'tj', create: 'BaseData', dir, args: ['--exit-when-done', '--log-format', 'json'] });
  const r = await withTimeout(run.exited, 45000, 'exit when done');
  assert.equal(r.code, 0, run.stderr().slice(-2000));
  const lines = run.stderr().split('\n').filter(Boolean).map((l) => JSON.parse(l));
  for (const l of lines) assert.ok(l.ts && l.level && l.component && l.msg, JSON.stringify(l));
  const changes = lines.filter((l) => l.msg === 'channel state');
  // every channel: -> running, -> draining, -> done (at info level)
  for (const ch of ['BaseData_p0', 'BaseData_p1', 'BaseData_p2', 'BaseData_p3']) {
    assert.deepEqual(changes.filter((l) => l.channel === ch).map((l) => l.to), ['running', 'draining', 'done'], ch);
  }
  assert.ok(lines.some((l) => l.msg === 'worker stopped' && l.status === 0 && l.records === 10));
});

test('bad options are refused with one clear line and status 2', { timeout: 30000 }, async () => {
  const dir = tempDir();
  for (const [args, re] of [
    [['--heartbeat-interval', '0.05'], /--heartbeat-interval must be at least 0.1/],
    [['--heartbeat-interval', '5', '--heartbeat-timeout', '5'], /--heartbeat-timeout must exceed/],
    [['--commit', 'sometimes'], /--commit.*auto\|manual/],
    [['--create', 'Everything'], /--create.*BaseData\|Stream\|BaseAndStream/],
  ]) {
    const run = startRun(suite.emu, { table: 'none', tunnel: 'none', dir, args });
    const r = await withTimeout(run.exited, 10000, 'usage error exit');
    assert.equal(r.code, 2, run.stderr());
    assert.match(run.stderr(), re);
  }
  // a script that does not load: one line with file:line, status 2, and no tunnel created
  const bad = path.join(dir, 'broken.lua');
  fs.writeFileSync(bad, 'local M = {}\nfunction M.process(ctx, batch)\n  if then end\nend\nreturn M\n');
  await createTable(suite.c, 'broken');
  const run = startRun(suite.emu, { table: 'broken', tunnel: 'never', create: 'Stream', dir, script: bad });
  const r = await withTimeout(run.exited, 10000, 'usage error exit');
  assert.equal(r.code, 2, run.stderr());
  assert.match(run.stderr(), /broken\.lua:3:/);
  const { tunnels } = await suite.emu.admin('tunnels', {});
  assert.ok(!tunnels.some((t) => t.tunnel_name === 'never'), 'no tunnel was created');
});
