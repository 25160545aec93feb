// emulator_update_table.test.mjs: UpdateTable through the official Node.js SDK 5.6.5
// (client.updateTable: tableOptions timeToLive / maxVersions / maxTimeDeviation, and
// streamSpecification enableStream / expirationTime), against lunnel-emulator --data-dir:
//   - a lowered time to live hides cells older than it on the next read, a raised one shows
//     them again; a lowered max versions returns fewer versions at once;
//   - the response and DescribeTable report the new options and stream;
//   - the options survive a restart (from the write-ahead log, and from a snapshot);
//   - the service's errors for what is refused: unknown table, TimeToLive 0, max versions 0,
//     a stream expiration outside [1, 168] hours.
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';

import { startEmulator, tablestore, tempDir } from '../harness/index.mjs';
import { expectError } from './lib/sdk_errors.mjs';

const TS = tablestore();
const call = (client, fn, params) =>
  new Promise((resolve, reject) => client[fn](params, (err, data) => (err ? reject(err) : resolve(data))));
const IGNORE = new TS.Condition(TS.RowExistenceExpectation.IGNORE, null);
const DAY = 86400 * 1000;

const values = (row) => (row.attributes || []).map((a) => a.columnValue);

// What a reader sees of the table `t`: row 'old' (one cell written 3 days ago) and row 'mv'
// (versions v1..v3), with as many versions as the table keeps.
async function view(c) {
  const old = await call(c, 'getRow', { tableName: 't', primaryKey: [{ id: 'old' }], maxVersions: 1 });
  const mv = await call(c, 'getRow', { tableName: 't', primaryKey: [{ id: 'mv' }], maxVersions: 10 });
  const d = await call(c, 'describeTable', { tableName: 't' });
  return {
    old: values(old.row),
    mv: values(mv.row),
    ttl: d.tableOptions.timeToLive,
    maxVersions: d.tableOptions.maxVersions,
    deviation: Number(d.tableOptions.deviationCellVersionInSec),
    stream: d.streamDetails.enableStream,
    expiration: d.streamDetails.expirationTime,
  };
}

test('UpdateTable changes TTL, max versions and the stream; reads obey it; it survives restarts', { timeout: 120000 }, async () => {
  const dir = path.join(tempDir('lunnel-update-table-'), 'data');
  let emu = null;
  try {
    emu = await startEmulator({ args: ['--data-dir', dir] });
    let c = emu.client();
    await call(c, 'createTable', {
      tableMeta: { tableName: 't', primaryKey: [{ name: 'id', type: 'STRING' }] },
      reservedThroughput: { capacityUnit: { read: 0, write: 0 } }, tableOptions: { timeToLive: -1, maxVersions: 3 },
    });
    const now = Date.now();
    await call(c, 'putRow', { tableName: 't', condition: IGNORE, primaryKey: [{ id: 'old' }], attributeColumns: [{ v: 'x', timestamp: now - 3 * DAY }] });
    for (const [v, ts] of [['v1', now - 3000], ['v2', now - 2000], ['v3', now - 1000]])
      await call(c, 'updateRow', { tableName: 't', condition: IGNORE, primaryKey: [{ id: 'mv' }], updateOfAttributeColumns: [{ PUT: [{ col: v, timestamp: ts }] }] });
    assert.deepEqual(await view(c), { old: ['x'], mv: ['v3', 'v2', 'v1'], ttl: -1, maxVersions: 3, deviation: 86400, stream: false, expiration: 0 });

    // TTL 1 day, max versions 1, deviation 1 hour, stream on for 24 hours
    const r = await call(c, 'updateTable', {
      tableName: 't', tableOptions: { timeToLive: 86400, maxVersions: 1, maxTimeDeviation: 3600 },
      streamSpecification: { enableStream: true, expirationTime: 24 },
    });
    assert.equal(r.tableOptions.timeToLive, 86400);
    assert.equal(r.tableOptions.maxVersions, 1);
    assert.equal(r.streamDetails.enableStream, true);
    assert.equal(r.streamDetails.expirationTime, 24);
    const changed = { old: [], mv: ['v3'], ttl: 86400, maxVersions: 1, deviation: 3600, stream: true, expiration: 24 };
    assert.deepEqual(await view(c), changed, 'reads obey the new TTL and max versions at once');

    // from the write-ahead log
    emu.child.kill('SIGKILL');
    await emu.exited;
    emu = await startEmulator({ args: ['--data-dir', dir] });
    c = emu.client();
    assert.deepEqual(await view(c), changed, 'after a restart from the log');

    // only the TTL given: max versions and the stream stay; a longer TTL shows the old cell
    await call(c, 'updateTable', { tableName: 't', tableOptions: { timeToLive: 7 * 86400 } });
    const longer = { ...changed, old: ['x'], ttl: 7 * 86400 };
    assert.deepEqual(await view(c), longer);

    // from a snapshot: a restart with a tiny --compact-bytes compacts at start-up
    await emu.stop();
    emu = await startEmulator({ args: ['--data-dir', dir, '--compact-bytes', '1'] });
    for (let i = 0; i < 200 && (await emu.admin('stats')).durable.compactions === 0; i++) await new Promise((res) => setTimeout(res, 50));
    assert.ok((await emu.admin('stats')).durable.compactions > 0, 'a snapshot was written');
    await emu.stop();
    emu = await startEmulator({ args: ['--data-dir', dir] });
    c = emu.client();
    assert.match(emu.stderr(), /snapshot [1-9]\d* records/, 'restored from the snapshot');
    assert.deepEqual(await view(c), longer, 'after a restart from the snapshot');

    // stream off
    await call(c, 'updateTable', { tableName: 't', tableOptions: {}, streamSpecification: { enableStream: false } });
    assert.equal((await view(c)).stream, false);

    // refused as the service refuses them
    await expectError(call(c, 'updateTable', { tableName: 'nosuch', tableOptions: { timeToLive: 86400 } }),
      404, 'OTSObjectNotExist', /Requested table does not exist/);
    await expectError(call(c, 'updateTable', { tableName: 't', tableOptions: { timeToLive: 0 } }),
      400, 'OTSParameterInvalid', /TimeToLive cannot be 0 or less than -1/);
    await expectError(call(c, 'updateTable', { tableName: 't', tableOptions: { maxVersions: 0 } }),
      400, 'OTSParameterInvalid', /maximum versions cannot be less than or equal to 0/);
    await expectError(call(c, 'updateTable', { tableName: 't', tableOptions: {}, streamSpecification: { enableStream: true, expirationTime: 169 } }),
      400, 'OTSParameterInvalid', /expiration time must be in \[1, 168\]/);
    assert.equal((await view(c)).ttl, 7 * 86400, 'a refused update changes nothing');
  } finally {
    if (emu) await emu.stop();
  }
});
