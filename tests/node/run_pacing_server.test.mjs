// run_pacing_server.test.mjs: a refusing server never becomes a request storm. Persistent
// refusals (OTSParameterInvalid) of ReadRecords, Checkpoint and GetCheckpoint, and replies
// that do not parse (a 200 carrying a web page, the faults' status 200) to ReadRecords and
// Heartbeat, are injected with the emulator's faults for a window of a few seconds; lunnel's requests, re-deliveries
// and log lines stay within README's "Failures and pacing" bound, nothing unhandled is
// checkpointed, and once the fault is cleared every row arrives.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { I, createTable, putRow, startRun, tempDir, waitFor } from '../harness/index.mjs';
import { emulatorForFile } from './lib/file_emulator.mjs';
import { allIds, countIds, killAll, missingAndDuplicates, sleep, track } from './lib/ids.mjs';
import { LOG_LINES_PER_STEP, REQUESTS_PER_STEP, failScript, lineCount, maxSteps, requestCounts, scriptCalls } from './lib/pacing.mjs';

const CHANNELS = 2;
const ROWS = 30;
const WINDOW_MS = 6000;

const suite = emulatorForFile({ args: ['--partitions', String(CHANNELS)] }, { cleanup: killAll });

// Runs a Stream tunnel with `path` refused for WINDOW_MS while ROWS rows are written; with
// faultFirst the refusal is in place before lunnel starts (GetCheckpoint: the channels never
// get to open()).
async function refused(table, path, { faultFirst = false, spec = { code: 'OTSParameterInvalid', status: 400 } } = {}) {
  const dir = tempDir();
  await createTable(suite.c, table);
  const fault = () => suite.emu.admin('faults', { path, ...spec, count: -1 });
  if (faultFirst) await fault();
  const run = track(startRun(suite.emu, { table, tunnel: 't', create: 'Stream', dir, script: failScript,
    args: ['--heartbeat-interval', '1', '--heartbeat-timeout', '10'] }));
  await run.waitLog(faultFirst ? /channel failed/ : /to=running/);
  if (!faultFirst) await fault();
  await requestCounts(suite.emu, true);
  const lines0 = lineCount(run.stderr());
  const t0 = Date.now();
  for (let id = 0; id < ROWS; id++) await putRow(suite.c, table, id, 'p', { v: I(id) });
  await sleep(WINDOW_MS - (Date.now() - t0));
  const window = (Date.now() - t0) / 1000 + (faultFirst ? 1 : 0);
  const counts = await requestCounts(suite.emu);
  const lines = lineCount(run.stderr()) - lines0;
  const delivered = allIds([dir]).length;
  await suite.emu.admin('faults', { clear: true });
  return { run, dir, window, counts, lines, delivered };
}

function assertPaced({ run, window, counts, lines }, what, logged = /channel failed, reopening after a backoff .*OTSParameterInvalid.* repeats=2/) {
  const steps = maxSteps(window);
  const channelCalls = (counts['/tunnel/getcheckpoint'] || 0) + (counts['/tunnel/readrecords'] || 0) +
    (counts['/tunnel/checkpoint'] || 0);
  // a healthy stream channel polls at its idle backoff (FAST: --max-backoff 0.2 s, ~5/s); a
  // failing one sends at most REQUESTS_PER_STEP per backoff step
  assert.ok(channelCalls <= CHANNELS * (window * 10 + steps * REQUESTS_PER_STEP),
    `${what}: ${JSON.stringify(counts)} in ${window} s`);
  assert.ok((counts['/tunnel/heartbeat'] || 0) <= window + 2 + CHANNELS * steps, `${what}: ${JSON.stringify(counts)}`);
  assert.ok(lines <= CHANNELS * steps * LOG_LINES_PER_STEP, `${what}: ${lines} log lines in ${window} s`);
  assert.match(run.stderr(), logged);
}

test('ReadRecords refused: paced re-reads, nothing processed meanwhile, every row after the fault', { timeout: 60000 }, async () => {
  const m = await refused('prread', '/tunnel/readrecords');
  assertPaced(m, 'ReadRecords');
  assert.equal(m.delivered, 0, 'nothing can be processed while every read is refused');
  const reads = m.counts['/tunnel/readrecords'] || 0;
  assert.ok(reads <= CHANNELS * maxSteps(m.window) * 2, `${reads} ReadRecords in ${m.window} s`);
  await waitFor(() => missingAndDuplicates(allIds([m.dir]), ROWS).missing.length === 0, 30000, 'every row after the fault');
  const r = await m.run.stop();
  assert.equal(r.code, 0, m.run.stderr().slice(-3000));
  assert.deepEqual(missingAndDuplicates(allIds([m.dir]), ROWS).dups, []);
});

test('Checkpoint refused: paced, re-deliveries bounded, nothing lost', { timeout: 60000 }, async () => {
  const m = await refused('prcp', '/tunnel/checkpoint');
  assertPaced(m, 'Checkpoint');
  const cps = m.counts['/tunnel/checkpoint'] || 0;
  // one Checkpoint per step (the final one of the failing object: no resync on this code)
  assert.ok(cps <= CHANNELS * maxSteps(m.window) * 2, `${cps} Checkpoints in ${m.window} s`);
  // each step may re-deliver what followed the last accepted checkpoint: ROWS at most
  assert.ok(m.delivered <= ROWS * (1 + maxSteps(m.window)), `${m.delivered} deliveries of ${ROWS} rows`);
  await waitFor(() => missingAndDuplicates(allIds([m.dir]), ROWS).missing.length === 0, 30000, 'every row');
  const r = await m.run.stop();
  assert.equal(r.code, 0, m.run.stderr().slice(-3000));
});

test('GetCheckpoint refused: no open(), no read, paced; the channels start once it is cleared', { timeout: 60000 }, async () => {
  const m = await refused('prgcp', '/tunnel/getcheckpoint', { faultFirst: true });
  assertPaced(m, 'GetCheckpoint');
  const gcps = m.counts['/tunnel/getcheckpoint'] || 0;
  assert.ok(gcps <= CHANNELS * maxSteps(m.window), `${gcps} GetCheckpoints in ${m.window} s`);
  assert.equal(scriptCalls(m.dir).open, 0, 'open() before the checkpoint was read');
  assert.equal(m.counts['/tunnel/readrecords'] || 0, 0, JSON.stringify(m.counts));
  assert.equal(m.delivered, 0);
  await waitFor(() => missingAndDuplicates(allIds([m.dir]), ROWS).missing.length === 0, 30000, 'every row after the fault');
  const r = await m.run.stop();
  assert.equal(r.code, 0, m.run.stderr().slice(-3000));
  assert.deepEqual(missingAndDuplicates(allIds([m.dir]), ROWS).dups, []);
});

const GARBAGE = { code: 'OTSParameterInvalid', status: 200 }; // status 200: an HTML page, not protobuf

test('ReadRecords answered with an unparseable 200: paced like a refusal, nothing processed, every row after', { timeout: 60000 }, async () => {
  const m = await refused('pgread', '/tunnel/readrecords', { spec: GARBAGE });
  assertPaced(m, 'unparseable ReadRecords', /channel failed, reopening after a backoff .* repeats=2/);
  assert.equal(m.delivered, 0, 'nothing can be processed from replies that do not parse');
  const reads = m.counts['/tunnel/readrecords'] || 0;
  assert.ok(reads <= CHANNELS * maxSteps(m.window) * 2, `${reads} ReadRecords in ${m.window} s`);
  await waitFor(() => missingAndDuplicates(allIds([m.dir]), ROWS).missing.length === 0, 30000, 'every row after the fault');
  const r = await m.run.stop();
  assert.equal(r.code, 0, m.run.stderr().slice(-3000));
  assert.deepEqual(missingAndDuplicates(allIds([m.dir]), ROWS).dups, []);
});

test('Heartbeat answered with an unparseable 200: the client reconnects at a paced rate and the run goes on', { timeout: 60000 }, async () => {
  const m = await refused('pghb', '/tunnel/heartbeat', { spec: GARBAGE });
  assert.equal(m.run.child.exitCode, null, `the run ended: ${m.run.stderr().slice(-2000)}`);
  const steps = maxSteps(m.window);
  const connects = m.counts['/tunnel/connect'] || 0;
  const heartbeats = m.counts['/tunnel/heartbeat'] || 0;
  // one Connect per reconnect; reconnects after an unhealthy run wait the backoff (1 s doubling)
  assert.ok(connects >= 1 && connects <= steps + 1, `${connects} Connects in ${m.window} s`);
  assert.ok(heartbeats <= 2 * (steps + 1) + m.window, `${heartbeats} Heartbeats in ${m.window} s`);
  assert.ok(m.lines <= (steps + 1) * LOG_LINES_PER_STEP * (CHANNELS + 1), `${m.lines} log lines in ${m.window} s`);
  await waitFor(() => missingAndDuplicates(allIds([m.dir]), ROWS).missing.length === 0, 30000, 'every row after the fault');
  const r = await m.run.stop();
  assert.equal(r.code, 0, m.run.stderr().slice(-3000));
});
