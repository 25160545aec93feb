// run_exactness.test.mjs: `lunnel run` end to end against lunnel-emulator. Rows written by the
// official Node.js SDK (base data before the tunnel; then stream changes: puts, updates with
// version deletes and delete-all, row deletes) must reach the script (tests/node/run_collect.lua)
// with identical keys, values, types, ops and per-key order, and exactly as many records as
// changes, for BaseData, Stream and BaseAndStream tunnels.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  B, D, I, Model, S, X, countRecords, createTable, deleteRow, diff, putRow,
  readRecords, startRun, tempDir, updateRow, waitFor, withTimeout
} from '../harness/index.mjs';
import { emulatorForFile } from './lib/file_emulator.mjs';

const suite = emulatorForFile();

// 40 base rows covering every attribute type, INTEGER beyond 2^53 and negatives, UTF-8.
async function writeBase(table, model) {
  for (let id = 1; id <= 40; id++) {
    const big = (1n << 60n) + BigInt(id);
    await putRow(suite.c, table, id, `k${id % 3}`, {
      s: S(`row ${id} héllo ✓`),
      i: I(id % 2 ? big : -BigInt(id) * 1000003n),
      d: D(id + 0.25),
      b: B(id % 2 === 0),
      x: X([id, 0, 255, 7]),
    }, model);
  }
}

// Stream changes: new puts, overwrites, updates (put + delete one version + delete all), deletes.
async function writeStream(table, model) {
  for (let id = 100; id < 120; id++) await putRow(suite.c, table, id, 'n', { s: S(`new ${id}`), i: I(id) }, model);
  for (let id = 1; id <= 10; id++) {
    await updateRow(suite.c, table, id, `k${id % 3}`, {
      put: { s: S(`upd ${id}`), i: I(-id) },
      deleteVersion: { d: 1700000000000 + id },
      deleteAll: ['b'],
    }, model);
  }
  for (let id = 11; id <= 15; id++) await deleteRow(suite.c, table, id, `k${id % 3}`, model);
  for (let id = 100; id < 105; id++) await putRow(suite.c, table, id, 'n', { s: S(`again ${id}`), d: D(-id / 8) }, model);
  for (let id = 100; id < 103; id++) await deleteRow(suite.c, table, id, 'n', model);
}

function assertExact(dir, model, run) {
  const recs = readRecords(dir);
  const problems = diff(recs, model);
  assert.deepEqual(problems.slice(0, 20), [], `records differ; lunnel stderr tail:\n${run.stderr().slice(-3000)}`);
  assert.equal(recs.length, model.count);
}

test('BaseData: every base row exactly once, then --exit-when-done exits 0', { timeout: 60000 }, async () => {
  const table = 'ex_base', dir = tempDir();
  await createTable(suite.c, table);
  const model = new Model();
  await writeBase(table, model);
  const run = startRun(suite.emu, { table, tunnel: 'tb', create: 'BaseData', dir, args: ['--exit-when-done'] });
  const r = await withTimeout(run.exited, 45000, 'lunnel run --exit-when-done to exit');
  if (r instanceof Error) await run.stop('SIGKILL');
  assert.equal(r.code, 0, `lunnel run exit ${JSON.stringify(r)}; stderr:\n${run.stderr().slice(-3000)}`);
  assert.match(run.stderr(), /every channel is TERMINATED/);
  assertExact(dir, model, run);
});

test('Stream: puts, updates with version deletes, row deletes, in per-key order', { timeout: 60000 }, async () => {
  const table = 'ex_stream', dir = tempDir();
  await createTable(suite.c, table);
  const run = startRun(suite.emu, { table, tunnel: 'ts', create: 'Stream', dir });
  await run.waitLog(/to=running/);
  const model = new Model();
  await writeStream(table, model);
  await waitFor(() => countRecords(dir) >= model.count, 30000, `${model.count} records`);
  const r = await run.stop('SIGTERM');
  assert.equal(r.code, 0, `exit ${JSON.stringify(r)}; stderr:\n${run.stderr().slice(-3000)}`);
  assertExact(dir, model, run);
});

test('BaseAndStream: base snapshot, then the stream after it', { timeout: 60000 }, async () => {
  const table = 'ex_both', dir = tempDir();
  await createTable(suite.c, table);
  const model = new Model();
  await writeBase(table, model);
  const run = startRun(suite.emu, { table, tunnel: 'tbs', create: 'BaseAndStream', dir });
  await waitFor(() => countRecords(dir) >= 40, 30000, '40 base records');
  await writeStream(table, model);
  await waitFor(() => countRecords(dir) >= model.count, 30000, `${model.count} records`);
  const r = await run.stop('SIGTERM');
  assert.equal(r.code, 0, `exit ${JSON.stringify(r)}; stderr:\n${run.stderr().slice(-3000)}`);
  assertExact(dir, model, run);
  // base records come first in every channel file, stream ones after
  const recs = readRecords(dir);
  assert.ok(recs.some((x) => x.ch.startsWith('BaseData_')) && recs.some((x) => !x.ch.startsWith('BaseData_')));
});
