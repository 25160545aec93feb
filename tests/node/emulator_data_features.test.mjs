// emulator_data_features.test.mjs: the data-API features an application needs, through the
// official Node.js SDK 5.6.5 exactly as its samples use them (samples/AutoIncrement.js,
// increment.js, conditionUpdateRow.js, getRange.js; lib/filter.js defaults: passIfMissing
// and latestVersionOnly true), against lunnel-emulator, with the service's documented errors
// for what is refused:
//   - AUTO_INCREMENT primary keys: PK_AUTO_INCR + RT_PK returns the generated key, values
//     unique and increasing; conditions on such writes refused as the service documents.
//   - atomic INCREMENT with RT_AFTER_MODIFY returnColumns (also in BatchWriteRow); refused on a
//     non-INTEGER column.
//   - column conditions on writes (single, AND/OR/NOT, passIfMissing): OTSConditionCheckFail.
//   - column filters on GetRow, GetRange and BatchGetRow, and ColumnPaginationFilter.
//   - time to live (cells older than it are not read) and max versions (older dropped).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { startEmulator, tablestore } from '../harness/index.mjs';
import { expectError } from './lib/sdk_errors.mjs';

const TS = tablestore();
const { Long } = TS;
const call = (client, fn, params) =>
  new Promise((resolve, reject) => client[fn](params, (err, data) => (err ? reject(err) : resolve(data))));
const IGNORE = TS.RowExistenceExpectation.IGNORE;
const EXIST = TS.RowExistenceExpectation.EXPECT_EXIST;
const cond = (e, cc = null) => new TS.Condition(e, cc);
const Single = (name, value, cmp, passIfMissing, latestOnly) => new TS.SingleColumnCondition(name, value, cmp, passIfMissing, latestOnly);
const CT = TS.ComparatorType;

const attrs = (row) => Object.fromEntries((row.attributes || []).map((a) => [a.columnName, a.columnValue]));
const str = (v) => (v && typeof v === 'object' && 'toNumber' in v ? v.toString() : v);

describe('lunnel-emulator data-API features with the official Node SDK', () => {
  let emu, c;
  before(async () => {
    emu = await startEmulator();
    c = emu.client();
  });
  after(async () => {
    const r = await emu.stop();
    assert.equal(r.code, 0, `emulator exit: ${JSON.stringify(r)}; stderr: ${emu.stderr()}`);
  });

  test('AUTO_INCREMENT primary key (samples/AutoIncrement.js)', async () => {
    await call(c, 'createTable', {
      tableMeta: { tableName: 'autoinc', primaryKey: [{ name: 'stringPK', type: 'STRING' }, { name: 'autoIncPK', type: 'INTEGER', option: 'AUTO_INCREMENT' }] },
      reservedThroughput: { capacityUnit: { read: 0, write: 0 } },
      tableOptions: { timeToLive: -1, maxVersions: 1 },
    });
    const d = await call(c, 'describeTable', { tableName: 'autoinc' });
    assert.equal(d.tableMeta.primaryKey[1].option, TS.PrimaryKeyOption?.AUTO_INCREMENT ?? 1, JSON.stringify(d.tableMeta));
    const ids = [];
    for (let i = 0; i < 5; i++) {
      const r = await call(c, 'putRow', {
        tableName: 'autoinc', condition: cond(IGNORE),
        primaryKey: [{ stringPK: 'pk1' }, { autoIncPK: TS.PK_AUTO_INCR }],
        attributeColumns: [{ col1: `v${i}` }],
        returnContent: { returnType: TS.ReturnType.Primarykey },
      });
      assert.equal(r.row.primaryKey[0].value, 'pk1');
      ids.push(BigInt(r.row.primaryKey[1].value.toString()));
    }
    for (let i = 1; i < ids.length; i++) assert.ok(ids[i] > ids[i - 1], `increasing: ${ids}`);
    // each generated key holds its row
    const g = await call(c, 'getRow', { tableName: 'autoinc', primaryKey: [{ stringPK: 'pk1' }, { autoIncPK: Long.fromString(ids[3].toString()) }], maxVersions: 1 });
    assert.equal(attrs(g.row).col1, 'v3');
    // the service's refusals
    await expectError(call(c, 'putRow', {
      tableName: 'autoinc', condition: cond(TS.RowExistenceExpectation.EXPECT_NOT_EXIST),
      primaryKey: [{ stringPK: 'pk1' }, { autoIncPK: TS.PK_AUTO_INCR }], attributeColumns: [{ col1: 'x' }],
    }), 400, 'OTSParameterInvalid', /Invalid expect: EXPECT_NOT_EXIST when modify row with pk auto increment/);
    await expectError(call(c, 'createTable', {
      tableMeta: { tableName: 'autoinc2', primaryKey: [{ name: 'a', type: 'STRING', option: 'AUTO_INCREMENT' }, { name: 'b', type: 'INTEGER' }] },
      reservedThroughput: { capacityUnit: { read: 0, write: 0 } }, tableOptions: { timeToLive: -1, maxVersions: 1 },
    }), 400, 'OTSParameterInvalid', /AUTO_INCREMENT primary key must be integer/);
  });

  test('atomic INCREMENT with RT_AFTER_MODIFY (samples/increment.js)', async () => {
    await call(c, 'createTable', {
      tableMeta: { tableName: 'orderHistory', primaryKey: [{ name: 'order_id', type: 'STRING' }] },
      reservedThroughput: { capacityUnit: { read: 0, write: 0 } }, tableOptions: { timeToLive: -1, maxVersions: 1 },
    });
    await call(c, 'putRow', { tableName: 'orderHistory', condition: cond(IGNORE), primaryKey: [{ order_id: 'o1' }], attributeColumns: [{ increment: Long.fromNumber(10) }, { name: 'x' }] });
    const seen = [];
    // concurrent increments: none lost
    await Promise.all(Array.from({ length: 20 }, async () => {
      const r = await call(c, 'updateRow', {
        tableName: 'orderHistory', condition: cond(EXIST), primaryKey: [{ order_id: 'o1' }],
        updateOfAttributeColumns: [{ INCREMENT: [{ increment: Long.fromNumber(1) }] }],
        returnContent: { returnColumns: ['increment'], returnType: TS.ReturnType.AfterModify },
      });
      seen.push(Number(str(attrs(r.row).increment)));
    }));
    seen.sort((a, b) => a - b);
    assert.deepEqual(seen, Array.from({ length: 20 }, (_, i) => 11 + i), 'each increment saw its own sum');
    // in BatchWriteRow too, and on a missing column it starts from 0
    const b = await call(c, 'batchWriteRow', { tables: [{ tableName: 'orderHistory', rows: [{
      type: 'UPDATE', condition: cond(EXIST), primaryKey: [{ order_id: 'o1' }],
      attributeColumns: [{ INCREMENT: [{ increment: Long.fromNumber(-5) }, { fresh: Long.fromNumber(7) }] }],
      returnContent: { returnColumns: ['increment', 'fresh'], returnType: TS.ReturnType.AfterModify },
    }] }] });
    assert.ok(b.tables[0].isOk, JSON.stringify(b.tables[0]));
    const g = await call(c, 'getRow', { tableName: 'orderHistory', primaryKey: [{ order_id: 'o1' }], maxVersions: 1 });
    assert.equal(str(attrs(g.row).increment), '25');
    assert.equal(str(attrs(g.row).fresh), '7');
    await expectError(call(c, 'updateRow', {
      tableName: 'orderHistory', condition: cond(IGNORE), primaryKey: [{ order_id: 'o1' }],
      updateOfAttributeColumns: [{ INCREMENT: [{ name: Long.fromNumber(1) }] }],
    }), 400, 'OTSParameterInvalid', /not an INTEGER/);
  });

  test('column conditions on writes (samples/conditionUpdateRow.js)', async () => {
    await call(c, 'createTable', {
      tableMeta: { tableName: 'people', primaryKey: [{ name: 'id', type: 'INTEGER' }] },
      reservedThroughput: { capacityUnit: { read: 0, write: 0 } }, tableOptions: { timeToLive: -1, maxVersions: 3 },
    });
    const pk = [{ id: Long.fromNumber(1) }];
    await call(c, 'putRow', { tableName: 'people', condition: cond(IGNORE), primaryKey: pk, attributeColumns: [{ name: 'john' }, { addr: 'china' }, { age: Long.fromNumber(30) }] });
    const and = new TS.CompositeCondition(TS.LogicalOperator.AND);
    and.addSubCondition(Single('name', 'john', CT.EQUAL));
    and.addSubCondition(Single('addr', 'china', CT.EQUAL));
    await call(c, 'updateRow', { tableName: 'people', condition: cond(EXIST, and), primaryKey: pk, updateOfAttributeColumns: [{ PUT: [{ col1: 'test6' }] }] });
    assert.equal(attrs((await call(c, 'getRow', { tableName: 'people', primaryKey: pk, maxVersions: 1 })).row).col1, 'test6');
    const no = new TS.CompositeCondition(TS.LogicalOperator.AND);
    no.addSubCondition(Single('name', 'john', CT.EQUAL));
    no.addSubCondition(Single('addr', 'japan', CT.EQUAL));
    await expectError(call(c, 'updateRow', { tableName: 'people', condition: cond(EXIST, no), primaryKey: pk, updateOfAttributeColumns: [{ PUT: [{ col1: 'nope' }] }] }), 403, 'OTSConditionCheckFail');
    // numbers compare as numbers, OR / NOT, and a missing column passes unless told otherwise
    await call(c, 'updateRow', { tableName: 'people', condition: cond(IGNORE, Single('age', Long.fromNumber(18), CT.GREATER_EQUAL)), primaryKey: pk, updateOfAttributeColumns: [{ PUT: [{ adult: true }] }] });
    await expectError(call(c, 'updateRow', { tableName: 'people', condition: cond(IGNORE, Single('age', Long.fromNumber(31), CT.GREATER_EQUAL)), primaryKey: pk, updateOfAttributeColumns: [{ PUT: [{ adult: false }] }] }), 403, 'OTSConditionCheckFail');
    const or = new TS.CompositeCondition(TS.LogicalOperator.OR);
    or.addSubCondition(Single('name', 'mary', CT.EQUAL));
    or.addSubCondition(Single('age', Long.fromNumber(40), CT.LESS_THAN));
    await call(c, 'deleteRow', { tableName: 'people', condition: cond(IGNORE, or), primaryKey: [{ id: Long.fromNumber(99) }] }); // absent row: columns missing, pass
    const not = new TS.CompositeCondition(TS.LogicalOperator.NOT);
    not.addSubCondition(Single('name', 'john', CT.EQUAL));
    await expectError(call(c, 'putRow', { tableName: 'people', condition: cond(IGNORE, not), primaryKey: pk, attributeColumns: [{ name: 'x' }] }), 403, 'OTSConditionCheckFail');
    await expectError(call(c, 'putRow', { tableName: 'people', condition: cond(IGNORE, Single('nick', 'j', CT.EQUAL, false)), primaryKey: pk, attributeColumns: [{ name: 'x' }] }), 403, 'OTSConditionCheckFail');
    await call(c, 'putRow', { tableName: 'people', condition: cond(IGNORE, Single('nick', 'j', CT.EQUAL, true)), primaryKey: pk, attributeColumns: [{ name: 'john' }, { age: Long.fromNumber(30) }] });
    // in BatchWriteRow the failed condition fails that row only
    const b = await call(c, 'batchWriteRow', { tables: [{ tableName: 'people', rows: [
      { type: 'UPDATE', condition: cond(IGNORE, Single('name', 'zed', CT.EQUAL)), primaryKey: pk, attributeColumns: [{ PUT: [{ z: 1 }] }] },
      { type: 'PUT', condition: cond(IGNORE), primaryKey: [{ id: Long.fromNumber(2) }], attributeColumns: [{ name: 'ann' }] },
    ] }] });
    assert.equal(b.tables[0].isOk, false);
    assert.equal(b.tables[0].errorCode, 'OTSConditionCheckFail');
    assert.equal(b.tables[1].isOk, true);
    const g = await call(c, 'getRow', { tableName: 'people', primaryKey: pk, maxVersions: 1 });
    assert.deepEqual([attrs(g.row).name, str(attrs(g.row).age), attrs(g.row).z], ['john', '30', undefined], 'the failed row changed nothing');
  });

  test('column filters on GetRow, GetRange, BatchGetRow; ColumnPaginationFilter', async () => {
    await call(c, 'createTable', {
      tableMeta: { tableName: 'items', primaryKey: [{ name: 'id', type: 'INTEGER' }] },
      reservedThroughput: { capacityUnit: { read: 0, write: 0 } }, tableOptions: { timeToLive: -1, maxVersions: 1 },
    });
    for (let i = 0; i < 10; i++) {
      const cols = [{ n: Long.fromNumber(i) }, { kind: i % 2 ? 'odd' : 'even' }, { a: 'A' }, { b: 'B' }, { c: 'C' }];
      if (i === 9) cols.splice(1, 1); // no 'kind'
      await call(c, 'putRow', { tableName: 'items', condition: cond(IGNORE), primaryKey: [{ id: Long.fromNumber(i) }], attributeColumns: cols });
    }
    const range = (columnFilter, extra = {}) => call(c, 'getRange', {
      tableName: 'items', direction: TS.Direction.FORWARD, inclusiveStartPrimaryKey: [{ id: TS.INF_MIN }],
      exclusiveEndPrimaryKey: [{ id: TS.INF_MAX }], maxVersions: 1, columnFilter, ...extra,
    });
    const ids = (r) => r.rows.map((row) => Number(row.primaryKey[0].value.toString()));
    assert.deepEqual(ids(await range(Single('kind', 'odd', CT.EQUAL))), [1, 3, 5, 7, 9], 'missing column passes by default');
    assert.deepEqual(ids(await range(Single('kind', 'odd', CT.EQUAL, false))), [1, 3, 5, 7]);
    const and = new TS.CompositeCondition(TS.LogicalOperator.AND);
    and.addSubCondition(Single('n', Long.fromNumber(3), CT.GREATER_THAN));
    and.addSubCondition(Single('n', Long.fromNumber(7), CT.LESS_EQUAL));
    assert.deepEqual(ids(await range(and)), [4, 5, 6, 7]);
    const page = await range(new TS.ColumnPaginationFilter(2, 1));
    assert.equal(page.rows.length, 10);
    assert.deepEqual(page.rows[0].attributes.map((a) => a.columnName), ['b', 'c'], 'columns [1, 3) in name order: a b c kind n');
    const g1 = await call(c, 'getRow', { tableName: 'items', primaryKey: [{ id: Long.fromNumber(2) }], maxVersions: 1, columnFilter: Single('kind', 'odd', CT.EQUAL) });
    assert.ok(!g1.row.primaryKey, 'a row the filter drops reads as absent');
    const g2 = await call(c, 'getRow', { tableName: 'items', primaryKey: [{ id: Long.fromNumber(3) }], maxVersions: 1, columnFilter: Single('kind', 'odd', CT.EQUAL) });
    assert.equal(attrs(g2.row).kind, 'odd');
    const bg = await call(c, 'batchGetRow', { tables: [{
      tableName: 'items', primaryKey: [[{ id: Long.fromNumber(2) }], [{ id: Long.fromNumber(5) }], [{ id: Long.fromNumber(42) }]],
      maxVersions: 1, columnFilter: Single('n', Long.fromNumber(4), CT.GREATER_THAN),
    }, { tableName: 'nosuch', primaryKey: [[{ id: Long.fromNumber(1) }]], maxVersions: 1 }] });
    const rows = bg.tables[0];
    assert.deepEqual(rows.map((r) => r.isOk), [true, true, true]);
    assert.equal(rows[0].primaryKey, null, 'filtered out');
    assert.equal(str(attrs(rows[1]).n), '5');
    assert.equal(rows[2].primaryKey, null, 'absent');
    assert.equal(bg.tables[1][0].isOk, false);
    assert.equal(bg.tables[1][0].errorCode, 'OTSObjectNotExist');
    await expectError(range(new TS.ColumnPaginationFilter(0, 0)), 400, 'OTSParameterInvalid', /Limit in ColumnPaginationFilter must be greater than 0/);
  });

  test('time to live and max versions', async () => {
    await call(c, 'createTable', {
      tableMeta: { tableName: 'ttl', primaryKey: [{ name: 'id', type: 'STRING' }] },
      reservedThroughput: { capacityUnit: { read: 0, write: 0 } }, tableOptions: { timeToLive: 86400, maxVersions: 2 },
    });
    const now = Date.now();
    // an old cell (2 days) is past the time to live: not read; a row with only old cells is absent
    await call(c, 'putRow', { tableName: 'ttl', condition: cond(IGNORE), primaryKey: [{ id: 'old' }], attributeColumns: [{ v: 'x', timestamp: now - 2 * 86400 * 1000 }] });
    await call(c, 'putRow', { tableName: 'ttl', condition: cond(IGNORE), primaryKey: [{ id: 'mixed' }], attributeColumns: [{ v: 'gone', timestamp: now - 2 * 86400 * 1000 }, { w: 'here', timestamp: now }] });
    const old = await call(c, 'getRow', { tableName: 'ttl', primaryKey: [{ id: 'old' }], maxVersions: 1 });
    assert.ok(!old.row.primaryKey, 'expired row not read');
    const mixed = await call(c, 'getRow', { tableName: 'ttl', primaryKey: [{ id: 'mixed' }], maxVersions: 1 });
    assert.deepEqual(Object.keys(attrs(mixed.row)), ['w']);
    const r = await call(c, 'getRange', { tableName: 'ttl', direction: TS.Direction.FORWARD, inclusiveStartPrimaryKey: [{ id: TS.INF_MIN }], exclusiveEndPrimaryKey: [{ id: TS.INF_MAX }], maxVersions: 1 });
    assert.deepEqual(r.rows.map((x) => x.primaryKey[0].value), ['mixed']);
    // max versions 2: a third version drops the oldest
    for (const [v, ts] of [['v1', now - 3000], ['v2', now - 2000], ['v3', now - 1000]])
      await call(c, 'updateRow', { tableName: 'ttl', condition: cond(IGNORE), primaryKey: [{ id: 'mv' }], updateOfAttributeColumns: [{ PUT: [{ col: v, timestamp: ts }] }] });
    const mv = await call(c, 'getRow', { tableName: 'ttl', primaryKey: [{ id: 'mv' }], maxVersions: 10 });
    assert.deepEqual(mv.row.attributes.map((a) => a.columnValue), ['v3', 'v2']);
    await expectError(call(c, 'createTable', {
      tableMeta: { tableName: 'ttl0', primaryKey: [{ name: 'id', type: 'STRING' }] },
      reservedThroughput: { capacityUnit: { read: 0, write: 0 } }, tableOptions: { timeToLive: 0, maxVersions: 1 },
    }), 400, 'OTSParameterInvalid', /TimeToLive cannot be 0 or less than -1/);
  });
});
