// replica.mjs: the source side of the destination-sink tests (tests/node/sink_*.test.mjs):
// a seeded workload written with the official Node.js SDK into the emulator (base rows, then
// puts, partial updates with column deletes, deletes, and attribute columns that appear only
// later), the source table read back with the SDK as typed values, and the comparison of a
// destination's rows with it, row by row and type by type.
import assert from 'node:assert/strict';
import { Long, createTable, deleteRow, putRow, rng, sleep, updateRow, tablestore } from '../../harness/index.mjs';

const TS = tablestore();

// Deterministic PRNG (the harness's mulberry32): the same seed gives the same workload and
// kill moments.
export { rng };

export const keyK = (id) => `k${id % 5}`;

// Typed values ([TYPE, string] as run.mjs writes them) of column `name` for step n.
function value(name, n, r) {
  switch (name) {
    case 's': {
      const extra = ["it's", 'back\\slash', 'tab\there', 'line\nbreak', '"quoted"', 'héllo ✓ 中文', ''];
      return ['STRING', `s${n} ${extra[n % extra.length]}`];
    }
    case 'i': return ['INTEGER', (n % 3 === 0 ? (1n << 60n) + BigInt(n) : BigInt(n) * (n % 2 ? -1n : 1n)).toString()];
    case 'd': return ['DOUBLE', n % 4 === 0 ? n + 0.25 : -n / 7];
    case 'b': return ['BOOLEAN', String(r() < 0.5)];
    case 'x': return ['BINARY', Buffer.from([n & 255, 0, 255, (n >> 8) & 255]).toString('hex')];
    default: return ['STRING', `${name}-${n}`]; // e1..e3: columns that appear in the stream only
  }
}

const BASE_COLS = ['s', 'i', 'd', 'b', 'x'];
const ALL_COLS = [...BASE_COLS, 'e1', 'e2', 'e3'];

export async function createSource(c, table) { await createTable(c, table); }

// `rows` base rows (ids 1..rows), written 10 at a time; model (run.mjs Model) records them.
export async function writeBase(c, table, rows, seed = 1, model = null) {
  const r = rng(seed);
  for (let id = 1; id <= rows; id += 10) {
    const ps = [];
    for (let j = id; j < id + 10 && j <= rows; j++) {
      const cols = {};
      for (const name of BASE_COLS) if (name === 's' || r() < 0.85) cols[name] = value(name, j, r);
      ps.push(putRow(c, table, j, keyK(j), cols, model));
    }
    await Promise.all(ps);
  }
}

// `ops` stream changes over ids 1..idMax: 40% puts, 40% partial updates (some columns put,
// some deleted), 20% deletes. Written in groups of 8 changes of distinct keys (so each key's
// changes keep their order). stop() (optional) ends it early; model records every change.
export async function writeStream(c, table, { ops, idMax, seed = 2, stop = () => false, model = null }) {
  const r = rng(seed);
  let n = 0;
  while (n < ops && !stop()) {
    const used = new Set();
    const ps = [];
    for (let j = 0; j < 8 && n < ops; j++) {
      const id = 1 + Math.floor(r() * idMax);
      if (used.has(id)) continue;
      used.add(id);
      n++;
      const step = 100000 + n;
      const p = r();
      if (p < 0.4) {
        const cols = {};
        for (const name of ALL_COLS) if (r() < 0.5) cols[name] = value(name, step, r);
        if (Object.keys(cols).length === 0) cols.s = value('s', step, r); // a row holds a cell
        ps.push(putRow(c, table, id, keyK(id), cols, model));
      } else if (p < 0.8) {
        const put = {}, del = [];
        for (const name of ALL_COLS) {
          const q = r();
          if (q < 0.3) put[name] = value(name, step, r);
          else if (q < 0.45) del.push(name);
        }
        // a put column is never also deleted in the same change: the result of that on a
        // missing row (an empty row or none) is not something the test should depend on
        if (Object.keys(put).length === 0) put.s = value('s', step, r);
        ps.push(updateRow(c, table, id, keyK(id), { put, deleteAll: del.filter((n) => !(n in put)) }, model));
      } else {
        ps.push(deleteRow(c, table, id, keyK(id), model));
      }
    }
    await Promise.all(ps);
  }
  return n;
}

// Normalized typed value: "TYPE:text" (doubles through Number so both sides print alike).
export function norm(type, text) {
  if (type === 'DOUBLE') return `DOUBLE:${String(Number(text))}`;
  return `${type}:${text}`;
}

// The source table: Map "id|k" -> {column: "TYPE:text"}, read with GetRange.
export async function dumpSource(c, table) {
  const rows = new Map();
  let start = [{ id: TS.INF_MIN }, { k: TS.INF_MIN }];
  for (let guard = 0; guard < 10000 && start; guard++) {
    const res = await c.getRange({
      tableName: table, direction: TS.Direction.FORWARD, maxVersions: 1, limit: 5000,
      inclusiveStartPrimaryKey: start, exclusiveEndPrimaryKey: [{ id: TS.INF_MAX }, { k: TS.INF_MAX }],
    });
    for (const row of res.rows) {
      if (!row.primaryKey) continue;
      const pk = Object.fromEntries(row.primaryKey.map((p) => [p.name, p.value]));
      const cols = {};
      for (const a of row.attributes || []) {
        const v = a.columnValue;
        if (Buffer.isBuffer(v)) cols[a.columnName] = norm('BINARY', v.toString('hex'));
        else if (v && typeof v === 'object' && 'toNumber' in v) cols[a.columnName] = norm('INTEGER', v.toString());
        else if (typeof v === 'boolean') cols[a.columnName] = norm('BOOLEAN', String(v));
        else if (typeof v === 'number') cols[a.columnName] = norm('DOUBLE', String(v));
        else cols[a.columnName] = norm('STRING', String(v));
      }
      rows.set(`${pk.id.toString()}|${pk.k}`, cols);
    }
    start = res.nextStartPrimaryKey ? res.nextStartPrimaryKey.map((p) => ({ [p.name]: p.value })) : null;
  }
  return rows;
}

// Differences between two dumps (at most `max` lines); empty when equal.
export function compare(src, dst, max = 10) {
  const out = [];
  for (const [key, cols] of src) {
    const d = dst.get(key);
    if (!d) { out.push(`${key}: missing in the destination (source ${JSON.stringify(cols)})`); } else {
      const a = JSON.stringify(Object.entries(cols).sort());
      const b = JSON.stringify(Object.entries(d).sort());
      if (a !== b) out.push(`${key}: source ${a} destination ${b}`);
    }
    if (out.length >= max) return out;
  }
  for (const key of dst.keys()) {
    if (!src.has(key)) out.push(`${key}: in the destination only (${JSON.stringify(dst.get(key))})`);
    if (out.length >= max) return out;
  }
  return out;
}

// Polls until the destination equals the source (dumpDst: async () => Map); throws the
// differences after timeoutMs.
export async function waitConverged(c, table, dumpDst, timeoutMs, what = 'destination == source') {
  const deadline = Date.now() + timeoutMs;
  let diffs = [];
  for (;;) {
    const src = await dumpSource(c, table);
    let dst;
    try { dst = await dumpDst(); } catch (e) { dst = null; diffs = [`cannot read the destination: ${e.message}`]; }
    if (dst) {
      diffs = compare(src, dst);
      if (diffs.length === 0) return src;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}:\n${diffs.join('\n')}`);
    await new Promise((res) => setTimeout(res, 300));
  }
}

// The crash half of the kill -9 tests: `times` runs from `start()`, each killed with SIGKILL
// at a moment drawn from `rand` (0.3 to 1.8 s) after it connected, while the caller's writer
// goes on.
export async function killRepeatedly(start, rand, times = 3) {
  for (let kill = 0; kill < times; kill++) {
    const r = start();
    await r.waitLog(/connected|channel/i, 30000).catch(() => {});
    await sleep(300 + Math.floor(rand() * 1500));
    const e = await r.stop('SIGKILL');
    assert.equal(e.signal, 'SIGKILL');
  }
}

export { Long };
