// writer.mjs: the writers of the end-to-end tests: rows written with the official Node.js SDK
// (tablestore@5.6.5) into the emulator, and the model of what each key's change stream must
// look like, compared with what a consumer delivered (diff).
import { tablestore } from './paths.mjs';

const TS = tablestore();
export const Long = TS.Long;

export function client(emu) {
  return emu.client();
}

export async function createTable(c, table) {
  await c.createTable({
    tableMeta: { tableName: table, primaryKey: [{ name: 'id', type: 'INTEGER' }, { name: 'k', type: 'STRING' }] },
    reservedThroughput: { capacityUnit: { read: 0, write: 0 } },
    tableOptions: { timeToLive: -1, maxVersions: 1 },
    streamSpecification: { enableStream: true, expirationTime: 24 },
  });
}

// Typed values as the collector prints them: [type, string].
export const I = (v) => ['INTEGER', BigInt(v).toString()];
export const D = (v) => ['DOUBLE', v];
export const S = (v) => ['STRING', v];
export const B = (v) => ['BOOLEAN', String(v)];
export const X = (buf) => ['BINARY', Buffer.from(buf).toString('hex')];

function sdkValue([type, v]) {
  switch (type) {
    case 'INTEGER': return Long.fromString(String(v));
    case 'DOUBLE': return v;
    case 'STRING': return v;
    case 'BOOLEAN': return v === 'true';
    case 'BINARY': return Buffer.from(v, 'hex');
    default: throw new Error(`type ${type}`);
  }
}

const keyOf = (id, k) => `${id}|${k}`;

// Records what each key's stream must contain, in order.
export class Model {
  constructor() { this.byKey = new Map(); this.count = 0; }
  push(id, k, rec) {
    const key = keyOf(id, k);
    if (!this.byKey.has(key)) this.byKey.set(key, []);
    this.byKey.get(key).push(rec);
    this.count++;
  }
}

const cond = () => new TS.Condition(TS.RowExistenceExpectation.IGNORE, null);
const pkOf = (id, k) => [{ id: Long.fromNumber(id) }, { k }];

// cols: {name: typedValue}
export async function putRow(c, table, id, k, cols, model) {
  await c.putRow({
    tableName: table, condition: cond(), primaryKey: pkOf(id, k),
    attributeColumns: Object.entries(cols).map(([n, v]) => ({ [n]: sdkValue(v) })),
  });
  model?.push(id, k, { action: 'PUT', cols: Object.entries(cols).map(([n, [t, v]]) => [n, t, v, 'PUT']) });
}

// ops: {put: {name: typed}, deleteVersion: {name: ts}, deleteAll: [names]}
export async function updateRow(c, table, id, k, ops, model) {
  const upd = [];
  if (ops.put) upd.push({ PUT: Object.entries(ops.put).map(([n, v]) => ({ [n]: sdkValue(v) })) });
  if (ops.deleteVersion) upd.push({ DELETE: Object.entries(ops.deleteVersion).map(([n, ts]) => ({ [n]: Long.fromNumber(ts) })) });
  if (ops.deleteAll) upd.push({ DELETE_ALL: ops.deleteAll });
  await c.updateRow({ tableName: table, condition: cond(), primaryKey: pkOf(id, k), updateOfAttributeColumns: upd });
  const cols = [];
  for (const [n, [t, v]] of Object.entries(ops.put || {})) cols.push([n, t, v, 'PUT']);
  for (const [n, ts] of Object.entries(ops.deleteVersion || {})) cols.push([n, null, null, 'DELETE_ONE_VERSION', ts]);
  for (const n of ops.deleteAll || []) cols.push([n, null, null, 'DELETE_ALL_VERSIONS']);
  model?.push(id, k, { action: 'UPDATE', cols });
}

export async function deleteRow(c, table, id, k, model) {
  await c.deleteRow({ tableName: table, condition: cond(), primaryKey: pkOf(id, k) });
  model?.push(id, k, { action: 'DELETE', cols: [] });
}

// Compares what the collector got with the model: same keys, per-key sequence of actions,
// columns (name, type, value, op; the timestamp of a version delete), nothing more.
// Returns a list of differences (empty = exact).
export function diff(records, model) {
  const got = new Map();
  for (const r of records) {
    const [[idName, idType, id], [kName, kType, k]] = r.pk;
    if (idName !== 'id' || idType !== 'INTEGER' || kName !== 'k' || kType !== 'STRING') return [`bad pk ${JSON.stringify(r.pk)}`];
    const key = keyOf(id, k);
    if (!got.has(key)) got.set(key, []);
    got.get(key).push(r);
  }
  const problems = [];
  for (const [key, want] of model.byKey) {
    const have = got.get(key) || [];
    if (have.length !== want.length) {
      problems.push(`${key}: ${have.length} records, want ${want.length}: ${JSON.stringify(have.map((h) => h.action))} vs ${JSON.stringify(want.map((w) => w.action))}`);
      continue;
    }
    for (let i = 0; i < want.length; i++) {
      const w = want[i], h = have[i];
      if (h.action !== w.action) { problems.push(`${key}#${i}: action ${h.action}, want ${w.action}`); continue; }
      const hc = h.cols.map(([n, t, v, op, ts]) => [n, t, v, op, ts]);
      if (hc.length !== w.cols.length) { problems.push(`${key}#${i}: ${hc.length} cols ${JSON.stringify(hc)}, want ${JSON.stringify(w.cols)}`); continue; }
      const sortCols = (a) => [...a].sort((x, y) => (x[0] + x[3]).localeCompare(y[0] + y[3]));
      const hs = sortCols(hc), ws = sortCols(w.cols);
      for (let j = 0; j < ws.length; j++) {
        const [n, t, v, op, ts] = ws[j];
        const [hn, ht, hv, hop, hts] = hs[j];
        let same = hn === n && ht === t && hop === op;
        if (same && t === 'DOUBLE') same = parseFloat(hv) === v;
        else if (same) same = hv === v;
        if (same && ts !== undefined) same = String(hts) === String(ts);
        if (!same) problems.push(`${key}#${i}: col ${JSON.stringify(hs[j])}, want ${JSON.stringify(ws[j])}`);
      }
    }
  }
  for (const key of got.keys()) if (!model.byKey.has(key)) problems.push(`${key}: unexpected key`);
  return problems;
}
