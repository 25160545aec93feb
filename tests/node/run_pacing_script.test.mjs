// run_pacing_script.test.mjs: a broken script never becomes a request storm. Against
// lunnel-emulator, counting requests with its admin tunnel_stats:
//   open() raising: nothing is read, processed or checkpointed on that channel, no
//     shutdown() runs for it, the channel is reopened after a backoff (1 s doubling), the
//     requests and log lines stay within README's bound; a clean run then gets every row;
//   shutdown() raising: every row once, the run ends normally, no reopen loop;
//   a dead letter that becomes unwritable (/dev/full: ENOSPC at run time): the poison batch
//     is not checkpointed, its channel is re-read only at the paced rate, a clean run gets it.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { B, I, createTable, putRow, startRun, tempDir, waitFor } from '../harness/index.mjs';
import { emulatorForFile } from './lib/file_emulator.mjs';
import { allIds, countIds, killAll, missingAndDuplicates, sleep, track, tunnelState } from './lib/ids.mjs';
import { LOG_LINES_PER_STEP, REQUESTS_PER_STEP, failScript, lineCount, maxSteps, requestCounts, scriptCalls } from './lib/pacing.mjs';

const CHANNELS = 2;
const SLOW_HB = ['--heartbeat-interval', '1', '--heartbeat-timeout', '10'];

const suite = emulatorForFile({ args: ['--partitions', String(CHANNELS)] }, { cleanup: killAll });

async function writeRows(table, lo, hi, poison = []) {
  for (let id = lo; id < hi; id++) {
    const cols = { v: I(id) };
    if (poison.includes(id)) cols.poison = B(true);
    await putRow(suite.c, table, id, 'p', cols);
  }
}

test('open() raising: nothing processed or checkpointed, reopens paced, a clean run gets every row', { timeout: 90000 }, async () => {
  const table = 'pfopen', dir = tempDir(), dir2 = tempDir();
  await createTable(suite.c, table);
  await writeRows(table, 0, 40);
  await requestCounts(suite.emu, true);
  const t0 = Date.now();
  const run = track(startRun(suite.emu, { table, tunnel: 't', create: 'BaseData', dir, script: failScript,
    custom: { fail_open: true }, args: SLOW_HB }));
  await waitFor(() => scriptCalls(dir).open >= CHANNELS, 20000, 'both channels tried open()');
  await sleep(8000 - (Date.now() - t0)); // the measurement window: 8 s of persistent failure
  const window = (Date.now() - t0) / 1000;
  const counts = await requestCounts(suite.emu);
  const calls = scriptCalls(dir);
  const log = run.stderr();
  const r = await run.stop();
  assert.equal(r.code, 0, log.slice(-3000));
  const steps = maxSteps(window);
  // nothing processed, no shutdown() for a failed open, nothing read or checkpointed
  assert.equal(calls.process, 0, 'process() ran on a channel whose open() failed');
  assert.equal(calls.shutdown, 0, 'shutdown() ran for a failed open()');
  assert.equal(counts['/tunnel/readrecords'] || 0, 0, JSON.stringify(counts));
  assert.equal(counts['/tunnel/checkpoint'] || 0, 0, JSON.stringify(counts));
  // paced: open() and GetCheckpoint at most once per backoff step per channel
  assert.ok(calls.open >= CHANNELS * 2, `reopened after the backoff: ${calls.open} opens`);
  assert.ok(calls.open <= CHANNELS * steps, `${calls.open} opens in ${window} s (bound ${CHANNELS * steps})`);
  const channelCalls = (counts['/tunnel/getcheckpoint'] || 0) + (counts['/tunnel/readrecords'] || 0) + (counts['/tunnel/checkpoint'] || 0);
  assert.ok(channelCalls <= CHANNELS * steps * REQUESTS_PER_STEP, JSON.stringify(counts));
  // heartbeats keep their interval, plus one immediate report per channel end
  assert.ok((counts['/tunnel/heartbeat'] || 0) <= window / 1 + 2 + CHANNELS * steps, JSON.stringify(counts));
  // log volume: bounded per step, identical errors counted
  assert.ok(lineCount(log) <= 20 + CHANNELS * steps * LOG_LINES_PER_STEP, `${lineCount(log)} log lines`);
  assert.match(log, /channel failed, reopening after a backoff .*open\(ctx\): .*fail_open.* repeats=2/);
  // the tunnel is not finished: no channel was reported TERMINATED
  const st = await tunnelState(suite.emu, 't');
  assert.ok(st.channels.every((ch) => ch.status !== 'TERMINATED'), JSON.stringify(st.channels));

  // a clean script: every row, once
  const run2 = track(startRun(suite.emu, { table, tunnel: 't', dir: dir2, script: failScript, args: ['--exit-when-done'] }));
  const r2 = await run2.exited;
  assert.equal(r2.code, 0, run2.stderr().slice(-3000));
  const { missing, dups } = missingAndDuplicates(allIds([dir, dir2]), 40);
  assert.deepEqual(missing, []);
  assert.deepEqual(dups, []);
});

test('shutdown() raising: every row once, the run ends, no reopen loop', { timeout: 60000 }, async () => {
  const table = 'pfshut', dir = tempDir();
  await createTable(suite.c, table);
  await writeRows(table, 0, 30);
  await requestCounts(suite.emu, true);
  const t0 = Date.now();
  const run = track(startRun(suite.emu, { table, tunnel: 't', create: 'BaseData', dir, script: failScript,
    custom: { fail_shutdown: true }, args: ['--exit-when-done', ...SLOW_HB] }));
  const r = await run.exited;
  const window = (Date.now() - t0) / 1000;
  const log = run.stderr();
  assert.equal(r.code, 0, log.slice(-3000));
  const { missing, dups } = missingAndDuplicates(allIds([dir]), 30);
  assert.deepEqual(missing, []);
  assert.deepEqual(dups, []);
  const calls = scriptCalls(dir);
  assert.equal(calls.open, CHANNELS, 'each channel opened once: a failed shutdown() does not reopen');
  assert.equal(calls.shutdown, CHANNELS);
  assert.match(log, /channel failed, reopening after a backoff .*shutdown\(ctx\): .*fail_shutdown/);
  const counts = await requestCounts(suite.emu);
  assert.ok((counts['/tunnel/readrecords'] || 0) <= CHANNELS * 4, JSON.stringify(counts));
  assert.ok((counts['/tunnel/heartbeat'] || 0) <= window / 1 + 2 + CHANNELS * 2, JSON.stringify(counts));
});

test('a dead letter unwritable at run time: the poison batch is not checkpointed, re-reads are paced', { timeout: 90000 }, async () => {
  const table = 'pfdead', dir = tempDir(), dir2 = tempDir();
  await createTable(suite.c, table);
  // /dev/full opens but every write fails with ENOSPC: a disk that filled up after start
  const run = track(startRun(suite.emu, { table, tunnel: 't', create: 'Stream', dir, script: failScript,
    custom: { poison: true }, args: ['--on-error', 'skip', '--dead-letter', '/dev/full', ...SLOW_HB] }));
  await run.waitLog(/to=running/);
  await writeRows(table, 0, 10);
  await waitFor(() => countIds(dir) >= 10, 20000, 'rows before the poison');
  await requestCounts(suite.emu, true);
  await writeRows(table, 10, 20, [10]);
  await run.waitLog(/dead-letter write failed/);
  const t0 = Date.now();
  await sleep(7000);
  const window = (Date.now() - t0) / 1000 + 2; // the failures began before t0
  const counts = await requestCounts(suite.emu);
  const log = run.stderr();
  const r = await run.stop();
  assert.equal(r.code, 0, log.slice(-3000));
  const steps = maxSteps(window);
  assert.match(log, /No space left on device/);
  const reads = counts['/tunnel/readrecords'] || 0;
  // the healthy channel polls at its idle backoff (<= --max-backoff 0.2 s); the failing one
  // only within its failure steps
  assert.ok(reads <= window * 10 + CHANNELS * steps * REQUESTS_PER_STEP, `${reads} ReadRecords in ${window} s`);
  const fails = (log.match(/dead-letter write failed/g) || []).length;
  assert.ok(fails >= 2 && fails <= steps, `${fails} dead-letter failures in ${window} s (bound ${steps})`);
  assert.ok(lineCount(log) <= 40 + CHANNELS * steps * LOG_LINES_PER_STEP, `${lineCount(log)} log lines`);
  // nothing past the poison was checkpointed: a clean run (poison accepted) re-reads it
  const got1 = allIds([dir]);
  assert.ok(!got1.includes(10), 'the poison record was never handled');
  const run2 = track(startRun(suite.emu, { table, tunnel: 't', dir: dir2, script: failScript }));
  await waitFor(() => allIds([dir2]).includes(10), 20000, 'the poison row in the clean run');
  await waitFor(() => missingAndDuplicates([...got1, ...allIds([dir2])], 20).missing.length === 0, 20000, 'every row');
  const r2 = await run2.stop();
  assert.equal(r2.code, 0, run2.stderr().slice(-3000));
  // what was handled before the poison was checkpointed: not delivered again
  const again = allIds([dir2]).filter((id) => id < 10);
  assert.deepEqual(again, [], 'rows handled before the poison batch were re-delivered');
});
