// emulator_data_api.test.mjs: the official Tablestore Node.js SDK (tablestore@5.6.5) against
// lunnel-emulator's table data API: tables, writes with conditions, reads of every value type
// (exact 64-bit integers, doubles, booleans, UTF-8, binaries), paged ranges both ways, cell
// versions, authentication failures, request limits, and the change stream the writes leave.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { startEmulator, tablestore, tempDir } from '../harness/index.mjs';
import { expectError } from './lib/sdk_errors.mjs';

const TS = tablestore();
const { Long } = TS;

// Promise form of a client call; rejects with the SDK's error object.
const call = (client, fn, params) =>
  new Promise((resolve, reject) => client[fn](params, (err, data) => (err ? reject(err) : resolve(data))));

const cond = (e) => new TS.Condition(e, null);
const IGNORE = TS.RowExistenceExpectation.IGNORE;
const EXPECT_EXIST = TS.RowExistenceExpectation.EXPECT_EXIST;
const EXPECT_NOT_EXIST = TS.RowExistenceExpectation.EXPECT_NOT_EXIST;

// attributes [{columnName, columnValue, timestamp}] -> {name: [values newest first]}
function byName(attributes) {
  const out = {};
  for (const a of attributes) (out[a.columnName] ||= []).push(a);
  return out;
}

// The SDK decodes INTEGER as int64-buffer's Int64LE: compare exactly via toString().
const intStr = (v) => v.toString();

// The SDK returns next start keys as [{name, value}]; requests take [{name: value}].
const asPk = (k) => (k ? k.map(({ name, value }) => ({ [name]: value })) : null);

const BIG = '9007199254740993'; // 2^53 + 1: not representable as a double
const NEG = '-9223372036854775808';
const UTF8 = 'héllo wörld ✓ 日本語 🎉';
const BIN = Buffer.from([0, 1, 2, 254, 255, 0, 128]);

describe('lunnel-emulator data API with the official Node SDK', () => {
  let emu, client;
  before(async () => {
    emu = await startEmulator();
    client = emu.client();
  });
  after(async () => {
    const r = await emu.stop();
    assert.equal(r.code, 0, `emulator exit: ${JSON.stringify(r)}; stderr: ${emu.stderr()}`);
  });

  test('create, list, describe and delete tables', async () => {
    await call(client, 'createTable', {
      tableMeta: { tableName: 'items', primaryKey: [{ name: 'id', type: 'INTEGER' }, { name: 'k', type: 'STRING' }] },
      reservedThroughput: { capacityUnit: { read: 0, write: 0 } },
      tableOptions: { timeToLive: -1, maxVersions: 2 },
      streamSpecification: { enableStream: true, expirationTime: 24 },
    });
    await call(client, 'createTable', {
      tableMeta: { tableName: 'blobs', primaryKey: [{ name: 'b', type: 'BINARY' }] },
      reservedThroughput: { capacityUnit: { read: 0, write: 0 } },
      tableOptions: { timeToLive: -1, maxVersions: 1 },
    });
    await call(client, 'createTable', {
      tableMeta: { tableName: 'doomed', primaryKey: [{ name: 'id', type: 'STRING' }] },
      reservedThroughput: { capacityUnit: { read: 0, write: 0 } },
      tableOptions: { timeToLive: -1, maxVersions: 1 },
    });
    const list = await call(client, 'listTable', {});
    assert.deepEqual([...list.tableNames].sort(), ['blobs', 'doomed', 'items']);

    await expectError(call(client, 'createTable', {
      tableMeta: { tableName: 'items', primaryKey: [{ name: 'id', type: 'INTEGER' }] },
      reservedThroughput: { capacityUnit: { read: 0, write: 0 } },
      tableOptions: { timeToLive: -1, maxVersions: 1 },
    }), 409, 'OTSObjectAlreadyExist');

    const d = await call(client, 'describeTable', { tableName: 'items' });
    assert.equal(d.tableMeta.tableName, 'items');
    // the SDK reports PrimaryKeyType numbers: INTEGER 1, STRING 2
    assert.deepEqual(d.tableMeta.primaryKey.map((p) => [p.name, p.type]), [['id', 1], ['k', 2]]);
    assert.equal(d.tableOptions.maxVersions, 2);
    assert.equal(d.streamDetails.enableStream, true);
    assert.equal(d.streamDetails.expirationTime, 24);

    await call(client, 'deleteTable', { tableName: 'doomed' });
    const list2 = await call(client, 'listTable', {});
    assert.deepEqual([...list2.tableNames].sort(), ['blobs', 'items']);
    await expectError(call(client, 'describeTable', { tableName: 'doomed' }), 404, 'OTSObjectNotExist');
  });

  test('putRow and getRow round-trip every value type exactly', async () => {
    await call(client, 'putRow', {
      tableName: 'items', condition: cond(EXPECT_NOT_EXIST),
      primaryKey: [{ id: Long.fromString(BIG) }, { k: UTF8 }],
      attributeColumns: [
        { big: Long.fromString(BIG) }, { neg: Long.fromString(NEG) }, { small: Long.fromNumber(-7) },
        { dbl: 0.1 }, { huge: -1.5e300 }, { yes: true }, { no: false },
        { text: UTF8 }, { empty: '' }, { bin: BIN },
      ],
    });
    const r = await call(client, 'getRow', {
      tableName: 'items', primaryKey: [{ id: Long.fromString(BIG) }, { k: UTF8 }], maxVersions: 1,
    });
    assert.equal(intStr(r.row.primaryKey[0].value), BIG);
    assert.equal(r.row.primaryKey[1].value, UTF8);
    const a = byName(r.row.attributes);
    assert.equal(intStr(a.big[0].columnValue), BIG);
    assert.equal(intStr(a.neg[0].columnValue), NEG);
    assert.equal(intStr(a.small[0].columnValue), '-7');
    assert.equal(a.dbl[0].columnValue, 0.1);
    assert.equal(typeof a.dbl[0].columnValue, 'number');
    assert.equal(a.huge[0].columnValue, -1.5e300);
    assert.equal(a.yes[0].columnValue, true);
    assert.equal(a.no[0].columnValue, false);
    assert.equal(a.text[0].columnValue, UTF8);
    assert.equal(a.empty[0].columnValue, '');
    assert.ok(Buffer.isBuffer(a.bin[0].columnValue), 'binary comes back as a Buffer');
    assert.deepEqual(a.bin[0].columnValue, BIN);
    // the server stamps its time in ms when the client gives none
    const ts = Number(intStr(a.text[0].timestamp));
    assert.ok(Math.abs(ts - Date.now()) < 60000, `timestamp ${ts} is server ms time`);

    // absent row: empty row, no error
    const none = await call(client, 'getRow', {
      tableName: 'items', primaryKey: [{ id: Long.fromNumber(404) }, { k: 'x' }], maxVersions: 1,
    });
    assert.deepEqual(none.row, {});

    // binary primary key
    await call(client, 'putRow', { tableName: 'blobs', condition: cond(IGNORE), primaryKey: [{ b: BIN }], attributeColumns: [{ v: 'x' }] });
    const rb = await call(client, 'getRow', { tableName: 'blobs', primaryKey: [{ b: BIN }], maxVersions: 1 });
    assert.deepEqual(rb.row.primaryKey[0].value, BIN);
  });

  test('row existence conditions fail and pass with the service codes', async () => {
    const pk = [{ id: Long.fromNumber(1) }, { k: 'cond' }];
    await expectError(call(client, 'updateRow', {
      tableName: 'items', condition: cond(EXPECT_EXIST), primaryKey: pk, updateOfAttributeColumns: [{ PUT: [{ a: 'x' }] }],
    }), 403, 'OTSConditionCheckFail');
    await expectError(call(client, 'deleteRow', { tableName: 'items', condition: cond(EXPECT_EXIST), primaryKey: pk }),
      403, 'OTSConditionCheckFail');
    await call(client, 'putRow', { tableName: 'items', condition: cond(EXPECT_NOT_EXIST), primaryKey: pk, attributeColumns: [{ a: 'first' }] });
    await expectError(call(client, 'putRow', {
      tableName: 'items', condition: cond(EXPECT_NOT_EXIST), primaryKey: pk, attributeColumns: [{ a: 'second' }],
    }), 403, 'OTSConditionCheckFail');
    await call(client, 'putRow', { tableName: 'items', condition: cond(EXPECT_EXIST), primaryKey: pk, attributeColumns: [{ a: 'third' }] });
    const r = await call(client, 'getRow', { tableName: 'items', primaryKey: pk, maxVersions: 1 });
    assert.equal(byName(r.row.attributes).a[0].columnValue, 'third');
    await call(client, 'deleteRow', { tableName: 'items', condition: cond(EXPECT_EXIST), primaryKey: pk });
    const gone = await call(client, 'getRow', { tableName: 'items', primaryKey: pk, maxVersions: 1 });
    assert.deepEqual(gone.row, {});
    // wrong primary key shape and unknown table
    await expectError(call(client, 'putRow', {
      tableName: 'items', condition: cond(IGNORE), primaryKey: [{ id: 'not-an-int' }, { k: 'x' }], attributeColumns: [{ a: 1 }],
    }), 400, 'OTSParameterInvalid');
    await expectError(call(client, 'getRow', { tableName: 'nope', primaryKey: [{ id: Long.fromNumber(1) }], maxVersions: 1 }),
      404, 'OTSObjectNotExist');
  });

  test('updateRow PUT / DELETE (one version) / DELETE_ALL and max versions', async () => {
    const pk = [{ id: Long.fromNumber(2) }, { k: 'versions' }];
    const t0 = 1700000000000;
    await call(client, 'putRow', {
      tableName: 'items', condition: cond(IGNORE), primaryKey: pk,
      attributeColumns: [{ v: 'one', timestamp: t0 }, { gone: 'x', timestamp: t0 }, { keep: true, timestamp: t0 }],
    });
    // two more versions of v: the table keeps 2
    await call(client, 'updateRow', {
      tableName: 'items', condition: cond(EXPECT_EXIST), primaryKey: pk,
      updateOfAttributeColumns: [{ PUT: [{ v: 'two', timestamp: t0 + 1 }] }],
    });
    await call(client, 'updateRow', {
      tableName: 'items', condition: cond(IGNORE), primaryKey: pk,
      updateOfAttributeColumns: [{ PUT: [{ v: 'three', timestamp: t0 + 2 }] }, { DELETE_ALL: ['gone'] }],
    });
    let r = await call(client, 'getRow', { tableName: 'items', primaryKey: pk, maxVersions: 10 });
    let a = byName(r.row.attributes);
    assert.deepEqual(a.v.map((c) => c.columnValue), ['three', 'two'], 'newest first, at most maxVersions=2 kept');
    assert.deepEqual(a.v.map((c) => Number(intStr(c.timestamp))), [t0 + 2, t0 + 1]);
    assert.equal(a.gone, undefined, 'DELETE_ALL removed the column');
    assert.equal(a.keep[0].columnValue, true);
    // maxVersions 1 in the read
    r = await call(client, 'getRow', { tableName: 'items', primaryKey: pk, maxVersions: 1 });
    assert.deepEqual(byName(r.row.attributes).v.map((c) => c.columnValue), ['three']);
    // delete one version
    await call(client, 'updateRow', {
      tableName: 'items', condition: cond(IGNORE), primaryKey: pk,
      updateOfAttributeColumns: [{ DELETE: [{ v: Long.fromNumber(t0 + 2) }] }],
    });
    r = await call(client, 'getRow', { tableName: 'items', primaryKey: pk, maxVersions: 10 });
    a = byName(r.row.attributes);
    assert.deepEqual(a.v.map((c) => c.columnValue), ['two']);
    // columnsToGet
    r = await call(client, 'getRow', { tableName: 'items', primaryKey: pk, maxVersions: 1, columnsToGet: ['keep'] });
    assert.deepEqual(r.row.attributes.map((c) => c.columnName), ['keep']);
  });

  test('batchWriteRow: per-row results, conditions per row', async () => {
    const rows = [];
    for (let i = 0; i < 25; i++) {
      rows.push({
        type: 'PUT', condition: cond(IGNORE), primaryKey: [{ id: Long.fromNumber(100 + i) }, { k: `r${String(i).padStart(2, '0')}` }],
        attributeColumns: [{ n: Long.fromNumber(i) }, { half: i / 2 }, { even: i % 2 === 0 }],
        returnContent: { returnType: TS.ReturnType.Primarykey },
      });
    }
    // one row that must fail its condition, one update, one delete of an absent row
    rows.push({ type: 'UPDATE', condition: cond(EXPECT_EXIST), primaryKey: [{ id: Long.fromNumber(999) }, { k: 'absent' }],
      attributeColumns: [{ PUT: [{ n: Long.fromNumber(1) }] }] });
    rows.push({ type: 'DELETE', condition: cond(IGNORE), primaryKey: [{ id: Long.fromNumber(998) }, { k: 'absent' }] });
    const res = await call(client, 'batchWriteRow', { tables: [{ tableName: 'items', rows }] });
    assert.equal(res.tables.length, 27);
    for (let i = 0; i < 25; i++) assert.equal(res.tables[i].isOk, true, `row ${i}: ${res.tables[i].errorMessage}`);
    assert.equal(res.tables[25].isOk, false);
    assert.equal(res.tables[25].errorCode, 'OTSConditionCheckFail');
    assert.equal(res.tables[26].isOk, true);
  });

  test('getRange pages forward and backward with limit and next start key', async () => {
    const start = [{ id: Long.fromNumber(100) }, { k: TS.INF_MIN }];
    const end = [{ id: Long.fromNumber(125) }, { k: TS.INF_MIN }];
    const seen = [];
    let next = start, pages = 0;
    while (next && pages < 20) {
      const r = await call(client, 'getRange', {
        tableName: 'items', direction: TS.Direction.FORWARD, inclusiveStartPrimaryKey: next,
        exclusiveEndPrimaryKey: end, limit: 7, maxVersions: 1,
      });
      assert.ok(r.rows.length <= 7);
      for (const row of r.rows) seen.push(row);
      next = asPk(r.nextStartPrimaryKey);
      pages++;
    }
    assert.equal(pages, 4, '25 rows in pages of 7');
    assert.equal(seen.length, 25);
    seen.forEach((row, i) => {
      assert.equal(intStr(row.primaryKey[0].value), String(100 + i));
      assert.equal(row.primaryKey[1].value, `r${String(i).padStart(2, '0')}`);
      const a = byName(row.attributes);
      assert.equal(intStr(a.n[0].columnValue), String(i));
      assert.equal(a.half[0].columnValue, i / 2);
      assert.equal(a.even[0].columnValue, i % 2 === 0);
    });

    const back = [];
    next = [{ id: Long.fromNumber(124) }, { k: TS.INF_MAX }];
    const bend = [{ id: Long.fromNumber(100) }, { k: TS.INF_MIN }];
    pages = 0;
    while (next && pages < 20) {
      const r = await call(client, 'getRange', {
        tableName: 'items', direction: TS.Direction.BACKWARD, inclusiveStartPrimaryKey: next,
        exclusiveEndPrimaryKey: bend, limit: 10, maxVersions: 1,
      });
      back.push(...r.rows);
      next = asPk(r.nextStartPrimaryKey);
      pages++;
    }
    assert.equal(pages, 3);
    assert.deepEqual(back.map((r) => intStr(r.primaryKey[0].value)), seen.map((r) => intStr(r.primaryKey[0].value)).reverse());

    // whole table, INF_MIN..INF_MAX, includes the big-integer row last (id 2^53+1)
    const all = await call(client, 'getRange', {
      tableName: 'items', direction: TS.Direction.FORWARD,
      inclusiveStartPrimaryKey: [{ id: TS.INF_MIN }, { k: TS.INF_MIN }],
      exclusiveEndPrimaryKey: [{ id: TS.INF_MAX }, { k: TS.INF_MAX }], limit: 100, maxVersions: 1,
    });
    const ids = all.rows.map((r) => BigInt(intStr(r.primaryKey[0].value)));
    assert.deepEqual(ids, [...ids].sort((x, y) => (x < y ? -1 : x > y ? 1 : 0)));
    assert.equal(String(ids[ids.length - 1]), BIG);
    assert.equal(all.nextStartPrimaryKey, null);
  });

  test('the change stream holds every successful write, in order, with sequence info', async () => {
    const ch = await emu.admin('changes', { table: 'items', limit: 1000 });
    // writes that succeeded on 'items': 1 put (types) + cond test: put, put, delete
    // + versions: put, update, update, update(delete one) + batch: 25 puts + 1 delete
    assert.equal(ch.begin, 0);
    assert.equal(ch.end, 1 + 3 + 4 + 26);
    assert.equal(ch.changes.length, ch.end);
    const actions = ch.changes.map((c) => c.action);
    assert.deepEqual(actions.slice(0, 8), ['PUT', 'PUT', 'PUT', 'DELETE', 'PUT', 'UPDATE', 'UPDATE', 'UPDATE']);
    assert.deepEqual(actions.slice(8), [...Array(25).fill('PUT'), 'DELETE']);
    let prev = null;
    for (const c of ch.changes) {
      assert.ok(c.record, `change ${c.index} decodes: ${c.decode_error}`);
      assert.ok(c.record.seq, 'stream records carry sequence info');
      assert.equal(c.record.seq.timestamp, c.timestamp_us);
      if (prev) {
        const later = c.timestamp_us > prev.timestamp_us || (c.timestamp_us === prev.timestamp_us && c.row_index > prev.row_index);
        assert.ok(later, `sequence increases at change ${c.index}`);
      }
      assert.ok(c.partition >= 0 && c.partition < 4);
      prev = c;
    }
    const first = ch.changes[0].record;
    // JSON.parse rounds 2^53+1; the reply itself carries the exact integer
    const raw = (await emu.post('/_emulator/changes', JSON.stringify({ table: 'items', limit: 1 }))).body.toString('utf8');
    assert.match(raw, new RegExp(`"pk":\\{"id":${BIG},`));
    assert.match(raw, new RegExp(`"neg":${NEG}[,}]`));
    assert.equal(first.pk.k, UTF8);
    assert.equal(first.cols.text, UTF8);
    assert.equal(first.cols.yes, true);
    assert.deepEqual(first.cols.bin, { binary: BIN.toString('base64') }); // r:tojson(): BINARY is tagged
    assert.equal(ch.changes[3].record.delete_marker, true);
    assert.deepEqual(ch.changes[6].record.deleted, ['gone']);
    assert.equal(ch.changes[6].record.cols.v, 'three');
    // same key, same partition
    assert.equal(ch.changes[1].partition, ch.changes[3].partition);

    const stats = await emu.admin('stats');
    const items = stats.tables.find((t) => t.name === 'items');
    assert.equal(items.changes_end, ch.end);
    assert.ok(stats.requests['/PutRow'].requests >= 5);
    assert.ok(stats.requests['/PutRow'].errors >= 2);
  });

  test('bulk load writes rows through the normal path; changes page with from/limit', async () => {
    const r = await emu.admin('load', { table: 'loaded', rows: 1200, columns: 3, value_bytes: 50, start: 10 });
    assert.equal(r.rows, 1200);
    assert.equal(r.changes_end, 1200);
    const d = await call(client, 'describeTable', { tableName: 'loaded' });
    assert.equal(d.tableMeta.primaryKey[0].name, 'id');
    const rows = [];
    let next = [{ id: TS.INF_MIN }];
    for (let pages = 0; next && pages < 10; pages++) {
      const g = await call(client, 'getRange', {
        tableName: 'loaded', direction: TS.Direction.FORWARD, inclusiveStartPrimaryKey: next,
        exclusiveEndPrimaryKey: [{ id: TS.INF_MAX }], limit: 500, maxVersions: 1,
      });
      rows.push(...g.rows);
      next = asPk(g.nextStartPrimaryKey);
    }
    assert.equal(rows.length, 1200);
    assert.equal(intStr(rows[0].primaryKey[0].value), '10');
    assert.equal(intStr(rows[1199].primaryKey[0].value), '1209');
    assert.deepEqual(rows[5].attributes.map((a) => a.columnName), ['c0', 'c1', 'c2']);
    assert.equal(rows[5].attributes[2].columnValue.length, 50);
    const page = await emu.admin('changes', { table: 'loaded', from: 1195, limit: 10 });
    assert.deepEqual(page.changes.map((c) => c.index), [1195, 1196, 1197, 1198, 1199]);
    await assert.rejects(emu.admin('load', { table: 'loaded' }), /HTTP 400 OTSParameterInvalid/);
    await assert.rejects(emu.admin('changes', { table: 'nope' }), /HTTP 404 OTSObjectNotExist/);

    // batch across tables: a missing table fails its rows only
    const res = await call(client, 'batchWriteRow', { tables: [
      { tableName: 'loaded', rows: [{ type: 'PUT', condition: cond(IGNORE), primaryKey: [{ id: Long.fromNumber(1) }], attributeColumns: [{ x: 1 }] }] },
      { tableName: 'missing', rows: [{ type: 'PUT', condition: cond(IGNORE), primaryKey: [{ id: Long.fromNumber(1) }], attributeColumns: [{ x: 1 }] }] },
    ] });
    assert.equal(res.tables.length, 2);
    assert.equal(res.tables[0].isOk, true);
    assert.equal(res.tables[1].isOk, false);
    assert.equal(res.tables[1].errorCode, 'OTSObjectNotExist');
  });

  test('responses are signed the way the Java SDK verifies them', async () => {
    const { createHmac, createHash } = await import('node:crypto');
    const r = await emu.post('/ListTable', Buffer.alloc(0));
    assert.equal(r.status, 200);
    assert.equal(r.headers['x-ots-contentmd5'], createHash('md5').update(r.body).digest('base64'));
    const names = Object.keys(r.headers).filter((k) => k.startsWith('x-ots-')).sort();
    assert.ok(names.includes('x-ots-requestid') && names.includes('x-ots-date') && names.includes('x-ots-contenttype'));
    const s = names.map((k) => `${k}:${r.headers[k]}\n`).join('') + '/ListTable';
    assert.equal(r.headers.authorization, `OTS ${emu.accessKeyId}:${createHmac('sha1', emu.accessKeySecret).update(s).digest('base64')}`);
  });

  test('a wrong secret, a bad body MD5 and an unknown key are rejected with 403', async () => {
    const bad = emu.client({ secretAccessKey: 'not-the-secret' });
    const err = await expectError(call(bad, 'listTable', {}), 403, 'OTSAuthFailed');
    assert.match(err.message, /Signature mismatch/);
    const r = await emu.post('/ListTable', Buffer.alloc(0), { accessKeyId: 'someone-else' });
    assert.equal(r.status, 403);
    assert.match(r.body.toString('latin1'), /OTSAuthFailed/);
    assert.ok(r.headers['x-ots-requestid'], 'errors carry a request id');
    // a body different from the signed one
    const { signHeaders } = await import('../harness/index.mjs');
    const h = signHeaders('/ListTable', Buffer.from('x'), { accessKeyId: emu.accessKeyId, accessKeySecret: emu.accessKeySecret, instance: emu.instance });
    const res = await new Promise((resolve, reject) => {
      const req = (await_import_http()).request({ host: '127.0.0.1', port: emu.port, method: 'POST', path: '/ListTable', headers: { ...h, 'Content-Length': 1 } }, (rs) => {
        const c = []; rs.on('data', (d) => c.push(d)); rs.on('end', () => resolve({ status: rs.statusCode, body: Buffer.concat(c) }));
      });
      req.on('error', reject);
      req.end('y');
    });
    assert.equal(res.status, 403);
    assert.match(res.body.toString('latin1'), /x-ots-contentmd5/);
  });
});

import * as http from 'node:http';
function await_import_http() { return http; }

describe('lunnel-emulator limits and STS tokens', () => {
  let emu;
  before(async () => { emu = await startEmulator({ args: ['--max-request-bytes', '1000', '--sts-token', 'tok-123'] }); });
  after(async () => { await emu.stop(); });

  test('a body beyond --max-request-bytes gets 413 OTSParameterInvalid', async () => {
    const r = await emu.post('/PutRow', Buffer.alloc(5000, 1));
    assert.equal(r.status, 413);
    assert.match(r.body.toString('latin1'), /OTSParameterInvalid/);
    assert.match(r.body.toString('latin1'), /5000 bytes exceeds the limit of 1000/);
    // the server is still fine
    const ok = await emu.admin('stats');
    assert.ok(ok.requests);
  });

  test('requests with an STS token need the configured one', async () => {
    const good = emu.client({ stsToken: 'tok-123' });
    await call(good, 'listTable', {});
    const bad = emu.client({ stsToken: 'tok-999' });
    const err = await expectError(call(bad, 'listTable', {}), 403, 'OTSAuthFailed');
    assert.match(err.message, /STS token/);
  });

  test('many concurrent keep-alive clients', async () => {
    const c = emu.client();
    await call(c, 'createTable', {
      tableMeta: { tableName: 'conc', primaryKey: [{ name: 'id', type: 'INTEGER' }] },
      reservedThroughput: { capacityUnit: { read: 0, write: 0 } }, tableOptions: { timeToLive: -1, maxVersions: 1 },
    });
    const clients = Array.from({ length: 8 }, () => emu.client());
    await Promise.all(Array.from({ length: 200 }, (_, i) => call(clients[i % 8], 'putRow', {
      tableName: 'conc', condition: cond(IGNORE), primaryKey: [{ id: Long.fromNumber(i) }], attributeColumns: [{ v: i }],
    })));
    const stats = await emu.admin('stats');
    assert.equal(stats.tables.find((t) => t.name === 'conc').rows, 200);
  });
});

describe('lunnel-emulator start-up conventions', () => {
  test('--port-file, the ready line, defaults and a clean exit on SIGINT', async () => {
    const fs = await import('node:fs');
    const pathMod = await import('node:path');
    const dir = tempDir('lunnel-emu-');
    const portFile = pathMod.join(dir, 'port');
    const emu = await startEmulator({ args: ['--port-file', portFile] });
    try {
      assert.equal(fs.readFileSync(portFile, 'utf8').trim(), String(emu.port));
      // stderr is its own pipe: wait (bounded) for the reminder instead of assuming order
      await emu.proc.waitLog(/lunnel-ak/, 10000, 'the default key printed as a local-use reminder');
      const r = await call(emu.client(), 'listTable', {});
      assert.deepEqual(r.tableNames, []);
    } finally {
      emu.child.kill('SIGINT');
      const r = await emu.exited;
      assert.equal(r.code, 0, `exit after SIGINT: ${JSON.stringify(r)}`);
    }
  });

  test('a bad option is refused with a message', async () => {
    await assert.rejects(startEmulator({ args: ['--no-such-option'] }), /unknown option '--no-such-option'/);
  });
});
