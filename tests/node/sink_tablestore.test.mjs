// sink_tablestore.test.mjs: examples/replicate.lua (lunnel.sinks.tablestore) under `lunnel run`
// against lunnel-emulator. Rows written to a source table by the official Node.js SDK (base
// data, then stream changes: puts with explicit versions, updates with put + delete one version
// + delete all versions, row deletes, several changes of one key in one batch) are replicated
// into a target table; read back with the SDK (GetRange, every version with its timestamp),
// the target must equal the source. A second run with BatchWriteRow failing for a while
// (emulator faults) still converges: the failing batches were retried, not skipped.
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import {
  tablestore, sourceDir, startRun, tempDir, waitFor, withTimeout
} from '../harness/index.mjs';
import { emulatorForFile } from './lib/file_emulator.mjs';

const TS = tablestore();
const { Long } = TS;
const script = path.join(sourceDir, 'examples/replicate.lua');

const suite = emulatorForFile();

async function createTable(table, stream) {
  await suite.c.createTable({
    tableMeta: { tableName: table, primaryKey: [{ name: 'id', type: 'INTEGER' }, { name: 'k', type: 'STRING' }] },
    reservedThroughput: { capacityUnit: { read: 0, write: 0 } },
    tableOptions: { timeToLive: -1, maxVersions: 5 },
    ...(stream ? { streamSpecification: { enableStream: true, expirationTime: 24 } } : {}),
  });
}

const cond = () => new TS.Condition(TS.RowExistenceExpectation.IGNORE, null);
const pk = (id, k) => [{ id: Long.fromNumber(id) }, { k }];
const put = (table, id, k, cols) => suite.c.putRow({ tableName: table, condition: cond(), primaryKey: pk(id, k), attributeColumns: cols });
const update = (table, id, k, upd) => suite.c.updateRow({ tableName: table, condition: cond(), primaryKey: pk(id, k), updateOfAttributeColumns: upd });
const del = (table, id, k) => suite.c.deleteRow({ tableName: table, condition: cond(), primaryKey: pk(id, k) });
const at = (name, value, ts) => ({ [name]: value, timestamp: Long.fromNumber(ts) });

// Every row of a table, every version, as comparable plain data.
async function dump(table) {
  const rows = [];
  let start = [{ id: TS.INF_MIN }, { k: TS.INF_MIN }];
  for (let guard = 0; guard < 100 && start; guard++) {
    const r = await suite.c.getRange({
      tableName: table, direction: TS.Direction.FORWARD, maxVersions: 5, limit: 1000,
      inclusiveStartPrimaryKey: start, exclusiveEndPrimaryKey: [{ id: TS.INF_MAX }, { k: TS.INF_MAX }],
    });
    for (const row of r.rows) {
      if (!row.primaryKey) continue;
      const key = row.primaryKey.map((p) => `${p.name}=${String(p.value)}`).join(',');
      const cols = (row.attributes || []).map((a) => {
        const v = a.columnValue;
        const val = Buffer.isBuffer(v) ? `bin:${v.toString('hex')}` : (v && typeof v === 'object' && 'toNumber' in v) ? `int:${v.toString()}` : `${typeof v}:${String(v)}`;
        return `${a.columnName}@${String(a.timestamp)}=${val}`;
      }).sort();
      rows.push({ key, cols });
    }
    start = r.nextStartPrimaryKey ? r.nextStartPrimaryKey.map((p) => ({ [p.name]: p.value })) : null;
  }
  return rows;
}

const T0 = 1700000000000;

async function writeBase(table) {
  for (let id = 1; id <= 30; id++) {
    await put(table, id, `k${id % 3}`, [
      at('s', `base ${id} héllo ✓`, T0 + id),
      at('i', Long.fromString(((1n << 60n) + BigInt(id)).toString()), T0 + id),
      at('d', id + 0.5, T0 + id),
      at('b', id % 2 === 0, T0 + id),
      at('x', Buffer.from([id, 0, 255]), T0 + id),
    ]);
  }
}

async function writeStream(table) {
  // new rows with several versions of one column
  for (let id = 100; id < 110; id++) {
    await put(table, id, 'n', [at('v', 'v1', T0 + 1000), at('w', Long.fromNumber(id), T0 + 1000)]);
    await update(table, id, 'n', [{ PUT: [at('v', 'v2', T0 + 2000)] }]);
    await update(table, id, 'n', [{ PUT: [at('v', 'v3', T0 + 3000)] }]);
  }
  // updates of base rows: put a new version, delete one existing version, delete all of a column
  for (let id = 100; id < 105; id++) {
    await update(table, id, 'n', [{ DELETE: [{ v: Long.fromNumber(T0 + 2000) }] }, { DELETE_ALL: ['w'] }]);
  }
  for (let id = 1; id <= 10; id++) {
    await update(table, id, `k${id % 3}`, [{ PUT: [{ s: `upd ${id}` }, at('d', -id / 8, T0 + 50 + id)] }, { DELETE_ALL: ['b'] }]);
  }
  for (let id = 1; id <= 4; id++) {
    await update(table, id, `k${id % 3}`, [{ DELETE: [{ d: Long.fromNumber(T0 + id) }] }]);
  }
  // deletes, and a row deleted then written again
  for (let id = 11; id <= 15; id++) await del(table, id, `k${id % 3}`);
  await del(table, 106, 'n');
  await put(table, 106, 'n', [{ v: 'reborn' }]);
  await del(table, 107, 'n');
}

async function converged(src, dst) {
  const [a, b] = [await dump(src), await dump(dst)];
  return JSON.stringify(a) === JSON.stringify(b) ? a : null;
}

async function stopOk(run) {
  const r = await run.stop('SIGTERM');
  assert.equal(r.code, 0, `lunnel run exit ${JSON.stringify(r)}; stderr:\n${run.stderr().slice(-3000)}`);
}

test('BaseAndStream replicated by BatchWriteRow: the target equals the source, every version', { timeout: 90000 }, async () => {
  const src = 'rep_src', dst = 'rep_dst';
  await createTable(src, true);
  await createTable(dst, false);
  await writeBase(src);
  const run = startRun(suite.emu, {
    table: src, tunnel: 'rep', create: 'BaseAndStream', dir: tempDir(), script,
    custom: { endpoint: suite.emu.endpoint, instance: suite.emu.instance, table: dst, retries: 20, backoff: 0.02 },
  });
  try {
    await waitFor(async () => (await dump(dst)).length === 30, 30000, '30 base rows in the target');
    await writeStream(src);
    const rows = await withTimeout(waitFor(() => converged(src, dst), 30000, 'target == source'), 35000, 'convergence');
    if (rows instanceof Error) {
      const diff = { src: await dump(src), dst: await dump(dst) };
      assert.fail(`${rows.message}\nsrc ${JSON.stringify(diff.src).slice(0, 1500)}\ndst ${JSON.stringify(diff.dst).slice(0, 1500)}\nstderr:\n${run.stderr().slice(-2000)}`);
    }
    // sanity: the interesting cases are really in the data
    const byKey = new Map(rows.map((r) => [r.key, r.cols]));
    assert.equal(byKey.get('id=11,k=k2'), undefined, 'deleted row is gone');
    assert.deepEqual(byKey.get('id=100,k=n'), [`v@${T0 + 1000}=string:v1`, `v@${T0 + 3000}=string:v3`]);
    assert.deepEqual(byKey.get('id=109,k=n').length, 4); // v1 v2 v3 + w
    assert.ok(byKey.get('id=106,k=n').some((x) => x.endsWith('=string:reborn')));
    assert.ok(!byKey.get('id=2,k=k2').some((x) => x.startsWith('b@')), 'delete all versions replayed');
    assert.ok(!byKey.get('id=2,k=k2').some((x) => x === `d@${T0 + 2}=number:2.5`), 'delete one version replayed');
  } finally {
    await stopOk(run);
  }
});

test('BatchWriteRow failing for a while: batches fail and are retried, the target still converges', { timeout: 90000 }, async () => {
  const src = 'rep_src2', dst = 'rep_dst2';
  await createTable(src, true);
  await createTable(dst, false);
  const run = startRun(suite.emu, {
    table: src, tunnel: 'rep2', create: 'Stream', dir: tempDir(), script,
    custom: { endpoint: suite.emu.endpoint, instance: suite.emu.instance, table: dst, retries: 1, backoff: 0.01 },
  });
  try {
    await run.waitLog(/to=running/);
    // every BatchWriteRow fails (503) for the next 12 calls: more than one batch's retries
    await suite.emu.admin('faults', { path: '/BatchWriteRow', error_rate: 1, count: 12 });
    await writeStream(src);
    const rows = await withTimeout(waitFor(() => converged(src, dst), 45000, 'target == source'), 50000, 'convergence');
    assert.ok(!(rows instanceof Error), `${rows?.message}\nstderr:\n${run.stderr().slice(-2000)}`);
    assert.match(run.stderr(), /BatchWriteRow failed after 2 attempt/, 'the sink error reached the batch');
    assert.ok(rows.length > 0);
  } finally {
    await stopOk(run);
  }
});
