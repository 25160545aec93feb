// emulator_origin_run.test.mjs: old values end to end. A table whose stream specification
// names origin columns (price, note) gets PUTs, UPDATEs (PUT, DELETE_ALL of a column) and
// DELETEs written with the official Node.js SDK; `lunnel run` consumes a Stream tunnel with
// tests/node/run_old.lua, which prints r:old() of price, note and other for every record.
// The printed previous values must match what was written: the named columns' latest values
// before each UPDATE/DELETE, nothing for PUTs, nothing for a row that did not exist, and
// never a column the specification does not name (other).
// The SDK 5.6.5 has no field for the specification's columns (its proto stops at
// expiration_time), so CreateTable is sent as the service's protobuf, encoded here
// (StreamSpecification field 3, columns_to_get, as in the Java SDK's schema).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { startEmulator, tablestore, startRun, waitFor } from '../harness/index.mjs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const TS = tablestore();
const { Long } = TS;
const here = path.dirname(fileURLToPath(import.meta.url));
const call = (client, fn, params) =>
  new Promise((resolve, reject) => client[fn](params, (err, data) => (err ? reject(err) : resolve(data))));

// ---- a minimal protobuf writer for CreateTableRequest --------------------------------------
const varint = (n) => {
  const out = [];
  let v = BigInt.asUintN(64, BigInt(n));
  do {
    let b = Number(v & 0x7fn);
    v >>= 7n;
    if (v) b |= 0x80;
    out.push(b);
  } while (v);
  return Buffer.from(out);
};
const key = (f, wt) => varint((f << 3) | wt);
const bytesField = (f, buf) => Buffer.concat([key(f, 2), varint(buf.length), buf]);
const strField = (f, s) => bytesField(f, Buffer.from(s));
const intField = (f, n) => Buffer.concat([key(f, 0), varint(n)]);

function createTableRequest(table, originColumns) {
  const meta = Buffer.concat([strField(1, table), bytesField(2, Buffer.concat([strField(1, 'id'), intField(2, 1)]))]);
  const reserved = bytesField(1, Buffer.concat([intField(1, 0), intField(2, 0)]));
  const options = Buffer.concat([intField(1, -1), intField(2, 1)]);
  const stream = Buffer.concat([intField(1, 1), intField(2, 24), ...originColumns.map((c) => strField(3, c))]);
  return Buffer.concat([bytesField(1, meta), bytesField(2, reserved), bytesField(3, options), bytesField(5, stream)]);
}

let emu;
before(async () => { emu = await startEmulator(); });
after(async () => { await emu.stop(); });

test('lunnel run prints r:old() values matching what the Node SDK overwrote and deleted', { timeout: 60000 }, async () => {
  const r = await emu.post('/CreateTable', createTableRequest('prices', ['price', 'note']));
  assert.equal(r.status, 200, r.body.toString('latin1'));
  const c = emu.client();
  const run = startRun(emu, { table: 'prices', tunnel: 'old', create: 'Stream', dir: '/nonexistent', script: path.join(here, 'run_old.lua') });
  try {
    await run.waitLog(/to=running/);
    const pk = (id) => [{ id: Long.fromNumber(id) }];
    const IGN = new TS.Condition(TS.RowExistenceExpectation.IGNORE, null);
    const writes = [
      ['putRow', { primaryKey: pk(1), attributeColumns: [{ price: Long.fromNumber(10) }, { note: 'a' }, { other: 'o' }] }],
      ['updateRow', { primaryKey: pk(1), updateOfAttributeColumns: [{ PUT: [{ price: Long.fromNumber(11) }] }] }],
      ['updateRow', { primaryKey: pk(1), updateOfAttributeColumns: [{ PUT: [{ note: 'b' }, { other: 'p' }] }] }],
      ['updateRow', { primaryKey: pk(1), updateOfAttributeColumns: [{ DELETE_ALL: ['note'] }] }],
      ['deleteRow', { primaryKey: pk(1) }],
      ['putRow', { primaryKey: pk(2), attributeColumns: [{ price: 2.5 }] }],
      ['updateRow', { primaryKey: pk(2), updateOfAttributeColumns: [{ PUT: [{ other: 'x' }] }] }],
      ['deleteRow', { primaryKey: pk(3) }],
    ];
    for (const [fn, p] of writes) await call(c, fn, { tableName: 'prices', condition: IGN, ...p });
    // id 1 and 2 may hash to different partitions: compare per key, in write order
    const want = [
      'OLD PUT 1 price=nil note=nil other=nil',
      'OLD UPDATE 1 price=10 note=a other=nil',
      'OLD UPDATE 1 price=11 note=a other=nil',
      'OLD UPDATE 1 price=11 note=b other=nil',
      'OLD DELETE 1 price=11 note=nil other=nil',
      'OLD PUT 2 price=nil note=nil other=nil',
      'OLD UPDATE 2 price=2.5 note=nil other=nil',
      'OLD DELETE 3 price=nil note=nil other=nil',
    ];
    const lines = await waitFor(() => {
      const l = run.stdout().split('\n').filter((x) => x.startsWith('OLD '));
      return l.length >= want.length ? l : null;
    }, 30000, `${want.length} records printed`);
    const byKey = (ls, id) => ls.filter((l) => l.split(' ')[2] === String(id));
    for (const id of [1, 2, 3]) assert.deepEqual(byKey(lines, id), byKey(want, id), `key ${id}:\n${lines.join('\n')}`);
  } finally {
    const x = await run.stop();
    assert.equal(x.code, 0, run.stderr().slice(-2000));
  }
});
