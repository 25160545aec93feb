// run_drain.test.mjs: graceful drain of `lunnel run`. SIGTERM in the middle of a stream
// (batches in flight, writes still going on): lunnel finishes what it handed to the script,
// checkpoints it, calls Shutdown and exits 0; a restart continues from there: every change
// arrives exactly once over both runs (nothing missing, nothing duplicated), in per-key order.
// A second signal exits at once.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  I, Model, S, countRecords, createTable, diff, putRow, readRecords, startRun,
  tempDir, updateRow, waitFor, withTimeout
} from '../harness/index.mjs';
import { emulatorForFile } from './lib/file_emulator.mjs';

const suite = emulatorForFile();

test('SIGTERM mid-stream, restart: nothing missing, nothing duplicated', { timeout: 90000 }, async () => {
  const table = 'drain', dir = tempDir();
  await createTable(suite.c, table);
  const custom = { sleep_ms: 3 };
  const run1 = startRun(suite.emu, { table, tunnel: 'td', create: 'Stream', dir, custom });
  await run1.waitLog(/to=running/);

  // a writer that keeps going while run 1 drains and run 2 starts; it holds at half-way until
  // run 1 has been signalled, so the signal always lands mid-stream whatever the machine's load
  const model = new Model();
  const TOTAL = 600;
  let written = 0, openGate;
  const gate = new Promise((resolve) => { openGate = resolve; });
  const writer = (async () => {
    for (let n = 0; n < TOTAL; n++) {
      if (n === TOTAL / 2) await gate;
      const id = n % 50; // 50 keys, 12 changes each: per-key order matters
      if (n < 50) await putRow(suite.c, table, id, 'd', { s: S(`v${n}`), i: I(n) }, model);
      else await updateRow(suite.c, table, id, 'd', { put: { s: S(`v${n}`), i: I(n) } }, model);
      written = n + 1;
    }
  })();

  await waitFor(() => countRecords(dir) >= 150, 30000, '150 records in run 1');
  const stopping = run1.stop('SIGTERM');
  openGate(); // writes go on while run 1 drains
  const r1 = await stopping;
  assert.equal(r1.code, 0, `run 1 exit ${JSON.stringify(r1)}; stderr:\n${run1.stderr().slice(-3000)}`);
  assert.match(run1.stderr(), /draining/);
  assert.match(run1.stderr(), /worker stopped status=0/);
  const afterRun1 = countRecords(dir);
  assert.ok(written < TOTAL || afterRun1 < TOTAL, 'run 1 stopped before the end of the stream');

  const run2 = startRun(suite.emu, { table, tunnel: 'td', dir, custom });
  await writer;
  await waitFor(() => countRecords(dir) >= TOTAL, 45000, `${TOTAL} records over both runs`);
  const r2 = await run2.stop('SIGTERM');
  assert.equal(r2.code, 0, `run 2 exit ${JSON.stringify(r2)}; stderr:\n${run2.stderr().slice(-3000)}`);

  const recs = readRecords(dir);
  const problems = diff(recs, model);
  assert.deepEqual(problems.slice(0, 20), [], `run 1 wrote ${afterRun1}; run 2 stderr:\n${run2.stderr().slice(-2000)}`);
  assert.equal(recs.length, TOTAL, 'exactly once over the restart');
  assert.ok(afterRun1 > 0 && afterRun1 < TOTAL, `both runs contributed (${afterRun1} / ${TOTAL})`);
});

test('a second signal exits at once', { timeout: 60000 }, async () => {
  const table = 'drain2', dir = tempDir();
  await createTable(suite.c, table);
  // every batch takes 20 s in the script: a graceful drain could not finish quickly
  const run = startRun(suite.emu, { table, tunnel: 'td2', create: 'Stream', dir, custom: { sleep_ms: 20000 } });
  await run.waitLog(/to=running/);
  await putRow(suite.c, table, 1, 'x', { s: S('slow') });
  await waitFor(() => countRecords(dir) >= 1, 20000, 'the slow batch to start');
  run.child.kill('SIGTERM');
  await run.waitLog(/draining/);
  const t0 = Date.now();
  run.child.kill('SIGTERM');
  const r = await withTimeout(run.exited, 5000, 'exit after the second signal');
  assert.ok(!(r instanceof Error), r.message);
  assert.equal(r.code, 130);
  assert.ok(Date.now() - t0 < 5000);
});
