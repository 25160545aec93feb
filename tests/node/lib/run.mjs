// run.mjs: helpers of the `lunnel run` end-to-end tests (tests/node/run_*.test.mjs): start
// `lunnel run` against an emulator, wait on conditions (never on time alone), read what the
// collector script (tests/node/run_collect.lua) wrote, write rows with the official Node SDK
// and keep the model of what each key's change stream must look like.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { tablestore } from './emulator.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
export const sourceDir = process.env.LUNNEL_SOURCE_DIR || path.resolve(here, '../../..');
export const collectScript = path.join(sourceDir, 'tests/node/run_collect.lua');

export function lunnelBinary() {
  if (process.env.LUNNEL_BIN) return process.env.LUNNEL_BIN;
  const dir = process.env.LUNNEL_BUILD_DIR || path.join(sourceDir, 'build');
  return path.join(dir, 'lunnel');
}

// Output directories, removed when the test process exits (LUNNEL_KEEP_TMP=1 keeps them).
const made = [];
process.on('exit', () => {
  if (process.env.LUNNEL_KEEP_TMP) return;
  for (const d of made) fs.rmSync(d, { recursive: true, force: true });
});
export function tempDir(prefix = 'lunnel-run-') {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  made.push(d);
  return d;
}

// Polls `fn` (sync or async) every 25 ms until it returns a truthy value; throws with `what`
// and the last value after timeoutMs.
export async function waitFor(fn, timeoutMs, what) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    last = await fn();
    if (last) return last;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (last: ${JSON.stringify(last)})`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

// Resolves like `promise`, or to an Error after timeoutMs (the timer never outlives it).
export async function withTimeout(promise, timeoutMs, what) {
  let timer;
  const t = new Promise((resolve) => { timer = setTimeout(() => resolve(new Error(`timed out after ${timeoutMs} ms: ${what}`)), timeoutMs); });
  try { return await Promise.race([promise, t]); } finally { clearTimeout(timer); }
}

// Fast settings so every phase takes a few heartbeats of 0.1 s.
export const FAST = ['--heartbeat-interval', '0.1', '--heartbeat-timeout', '3', '--checkpoint-interval', '0.2',
  '--max-backoff', '0.2', '--reconnect-delay-max', '0.2', '--drain-timeout', '20', '--workers', '2', '--no-watch'];

// Starts `lunnel run`; resolves at once. `exited` resolves {code, signal}.
// noCustom: pass no --custom (a --config file supplies it).
export function startRun(emu, { table, tunnel, create, dir, custom = {}, args = [], script = collectScript, noCustom = false } = {}) {
  const fullCustom = JSON.stringify({ dir, ...custom });
  const argv = ['run', '--endpoint', emu.endpoint, '--instance', emu.instance, '--table', table, '--tunnel', tunnel,
    ...(create ? ['--create', create] : []), ...(noCustom ? [] : ['--custom', fullCustom]), ...FAST, ...args, script];
  const child = spawn(lunnelBinary(), argv, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, TABLESTORE_ACCESS_KEY_ID: emu.accessKeyId, TABLESTORE_ACCESS_KEY_SECRET: emu.accessKeySecret },
  });
  let stderr = '';
  let stdout = ''; // what the script printed (bounded: the first MiB)
  child.stderr.on('data', (d) => { stderr += d; });
  child.stdout.on('data', (d) => { if (stdout.length < 1 << 20) stdout += d; });
  // 'close', not 'exit': it comes after the last stderr data, so a test that checks the final
  // line after the exit sees it
  const exited = new Promise((resolve) => child.on('close', (code, signal) => resolve({ code, signal })));
  return {
    child, exited,
    stderr: () => stderr,
    stdout: () => stdout,
    // resolves once a stderr line matches re
    waitLog: (re, timeoutMs = 20000) => waitFor(() => re.test(stderr), timeoutMs, `log line ${re}`),
    async stop(signal = 'SIGTERM', timeoutMs = 20000) {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      const r = await exited;
      clearTimeout(timer);
      return r;
    },
  };
}

// Every line the collector wrote, in file order per channel: [{ch, action, pk, cols}].
export function readRecords(dir) {
  const out = [];
  // base-data channels first: for BaseAndStream their records precede every stream record
  const rank = (n) => (n.startsWith('BaseData_') ? '0' : '1') + n;
  const files = fs.readdirSync(dir).filter((n) => n.endsWith('.jsonl')).sort((a, b) => rank(a).localeCompare(rank(b)));
  for (const f of files) {
    const text = fs.readFileSync(path.join(dir, f), 'utf8');
    for (const l of text.split('\n')) if (l) out.push(JSON.parse(l));
  }
  return out;
}

export function countRecords(dir) {
  let n = 0;
  for (const f of fs.readdirSync(dir).filter((x) => x.endsWith('.jsonl'))) {
    const text = fs.readFileSync(path.join(dir, f), 'utf8');
    for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) === 10) n++;
  }
  return n;
}

// ---- writing with the official SDK, and the model of the expected stream ----------------

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
