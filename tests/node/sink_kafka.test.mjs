// sink_kafka.test.mjs: examples/to_kafka.lua (lunnel.sinks.kafka, librdkafka's idempotent
// producer) under `lunnel run` against lunnel-emulator. No Kafka broker is packaged in Debian:
// the broker is librdkafka's built-in mock cluster (it speaks the Kafka protocol on real
// 127.0.0.1 sockets), kept alive by build/tests/lunnel-kafka-mock, and the topic is read back
// with kcat, an independent client. The source is written with the official Node.js SDK
// (base rows, then puts, partial updates with column deletes, deletes) and every write is
// kept in a model: per key, the topic must hold every change, in order, with the documented
// r:tojson() shape (a re-delivered change may appear again after a crash; its r.seq tells
// the copies apart and copies never break the order of first appearances):
//   1. a BaseAndStream run;
//   2. the same with three kill -9 of lunnel at seeded random moments;
//   3. the brokers down mid-run: batches fail (no delivery reports), nothing is checkpointed
//      past them (lunnel is killed while they are down; a new run resumes from the
//      checkpoints), and after the brokers are back every change is there.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { after, before, test } from 'node:test';
import {
  Model, announceSeed, buildDir, runLunnelSync, sourceDir, startEmulator, startProcess, startRun, tempDir, waitFor
} from '../harness/index.mjs';
import { killAll, track } from './lib/ids.mjs';
import { createSource, killRepeatedly, rng, writeBase, writeStream } from './lib/replica.mjs';

const script = path.join(sourceDir, 'examples/to_kafka.lua');
const TOPICS = ['cdc1', 'cdc2', 'cdc3'];

let emu, c, mock, bootstrap;
before(async () => {
  emu = await startEmulator();
  c = emu.client();
  mock = startProcess(path.join(buildDir, 'tests/lunnel-kafka-mock'), ['1', TOPICS.join(','), '4'], { stdin: 'pipe', name: 'lunnel-kafka-mock' });
  bootstrap = (await mock.waitStdout(/^bootstrap=(\S+)\n/, 20000, 'the mock cluster'))[1];
  mock.command = async (cmd) => {
    const before = mock.stdout().length;
    mock.child.stdin.write(`${cmd}\n`);
    await waitFor(() => mock.stdout().slice(before).includes(`ok ${cmd}\n`), 10000, `mock ${cmd}`);
  };
});
after(async () => {
  await killAll();
  await emu?.stop();
  if (mock) { mock.child.stdin.end(); await mock.stop(null, 5000); }
});

// Every message of the topic, read with kcat: [{partition, offset, key, value}].
function consume(topic) {
  const text = execFileSync('kcat', ['-C', '-b', bootstrap, '-t', topic, '-o', 'beginning', '-e', '-q',
    '-f', '%p\t%o\t%k\t%s\n'], { stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 256 << 20 }).toString();
  return text.split('\n').filter((l) => l).map((l) => {
    const [p, o, k, ...rest] = l.split('\t');
    return { partition: Number(p), offset: Number(o), key: k, value: rest.join('\t') };
  });
}

// The model's column list of a change, in the form the JSON carries.
function expected(rec) {
  const cols = {}, deleted = [];
  for (const [n, t, v, op] of rec.cols) {
    if (op !== 'PUT') { deleted.push(n); continue; }
    cols[n] = t === 'BINARY' ? Buffer.from(v, 'hex').toString('base64') : t === 'BOOLEAN' ? v === 'true' : t === 'INTEGER' ? Number(v) : v;
  }
  return JSON.stringify({ action: rec.action, cols: Object.entries(cols).sort(), deleted: deleted.sort() });
}

// The tunnel exists before the first stream write (a change made before it is not in it).
function createTunnel(table, tunnel, type) {
  const r = runLunnelSync(['tunnel', 'create', '--endpoint', emu.endpoint, '--instance', emu.instance,
    '--table', table, '--tunnel', tunnel, '--type', type], { emu });
  assert.equal(r.code, 0, r.stderr);
}

// Differences between the topic and the model (empty = every change present, in order).
// streamOnly: base rows (no seq) are a snapshot read while the stream was being written, so
// only the stream's changes are compared; each base message must still be of a written key.
function check(topic, model, { streamOnly = false, baseKeys = null } = {}) {
  const byKey = new Map();
  const partitionOf = new Map();
  for (const m of consume(topic)) { // kcat prints each partition in offset order
    const v = JSON.parse(m.value);
    const key = `${v.pk.id}|${v.pk.k}`;
    assert.equal(m.key, `i${v.pk.id}s${Buffer.byteLength(v.pk.k)}:${v.pk.k}`, 'message key = r:key()');
    if (partitionOf.has(key)) assert.equal(partitionOf.get(key), m.partition, `${key}: one partition`);
    partitionOf.set(key, m.partition);
    if (streamOnly && !v.seq) {
      assert.ok(baseKeys.has(key), `${key}: a base row of a key never written`);
      continue;
    }
    if (!byKey.has(key)) byKey.set(key, { seen: new Set(), list: [] });
    const e = byKey.get(key);
    const id = v.seq ? JSON.stringify(v.seq) : m.value; // base rows carry no seq
    if (e.seen.has(id)) continue; // a re-delivered copy
    e.seen.add(id);
    // BINARY is {"binary": base64}; INTEGER compared as a double (JSON.parse's precision)
    const val = (x) => (x && typeof x === 'object' && 'binary' in x ? x.binary : typeof x === 'string' || typeof x === 'boolean' ? x : Number(x));
    const cols = Object.entries(v.cols).map(([n, x]) => [n, val(x)]).sort();
    e.list.push(JSON.stringify({ action: v.action, cols, deleted: (v.deleted || []).sort() }));
  }
  const problems = [];
  for (const [key, want] of model.byKey) {
    const got = byKey.get(key)?.list || [];
    const w = want.map(expected);
    if (JSON.stringify(got) !== JSON.stringify(w)) problems.push(`${key}: got ${got.length} changes ${JSON.stringify(got).slice(0, 300)}, want ${w.length} ${JSON.stringify(w).slice(0, 300)}`);
    if (problems.length > 5) break;
  }
  for (const key of byKey.keys()) if (!model.byKey.has(key)) problems.push(`${key}: not written`);
  return problems;
}

async function waitComplete(topic, model, timeoutMs, opts) {
  let last = [];
  try {
    await waitFor(() => { last = check(topic, model, opts); return last.length === 0; }, timeoutMs, `every change in ${topic}`);
  } catch (e) {
    assert.fail(`${e.message}\n${last.join('\n')}`);
  }
}

const run = (table, tunnel, create, topic) => track(startRun(emu, {
  table, tunnel, create, dir: tempDir(), script, custom: { brokers: bootstrap, topic, timeout: 3 },
}));

test('BaseAndStream into Kafka: every change present, per-key order kept, key and value as documented', { timeout: 150000 }, async () => {
  const src = 'k_src1', model = new Model();
  await createSource(c, src);
  await writeBase(c, src, 500, 1, model);
  createTunnel(src, 'k1', 'BaseAndStream');
  const r = run(src, 'k1', undefined, TOPICS[0]);
  try {
    // the base rows first (so they are exactly the rows written above), then the stream
    await waitFor(() => consume(TOPICS[0]).length >= 500, 60000, '500 base rows in the topic');
    await writeStream(c, src, { ops: 800, idMax: 600, model });
    await waitComplete(TOPICS[0], model, 90000);
    const all = consume(TOPICS[0]);
    assert.ok(all.some((m) => JSON.parse(m.value).action === 'DELETE') && all.some((m) => (JSON.parse(m.value).deleted || []).length > 0), 'deletes and column deletes are in the data');
    assert.ok(new Set(all.map((m) => m.partition)).size > 1, 'keys spread over partitions');
  } finally {
    const e = await r.stop('SIGTERM');
    assert.equal(e.code, 0, r.stderr().slice(-2000));
  }
});

test('three kill -9 of lunnel at seeded random moments: every change still present, in order', { timeout: 200000 }, async () => {
  const src = 'k_src2', model = new Model(), rand = rng(announceSeed()); // LUNNEL_TEST_SEED replays it
  await createSource(c, src);
  await writeBase(c, src, 500, 3);
  const baseKeys = new Set(Array.from({ length: 500 }, (_, i) => `${i + 1}|k${(i + 1) % 5}`));
  createTunnel(src, 'k2', 'BaseAndStream');
  let done = false;
  const writer = writeStream(c, src, { ops: 1500, idMax: 600, seed: 4, stop: () => done, model });
  try {
    await killRepeatedly(() => run(src, 'k2', undefined, TOPICS[1]), rand);
  } finally {
    await writer;
    done = true;
  }
  const r = run(src, 'k2', undefined, TOPICS[1]);
  try {
    await waitComplete(TOPICS[1], model, 120000, { streamOnly: true, baseKeys });
  } finally {
    const e = await r.stop('SIGTERM');
    assert.equal(e.code, 0, r.stderr().slice(-2000));
  }
});

test('Kafka brokers down mid-run: batches fail, nothing is checkpointed past them, every change arrives after', { timeout: 200000 }, async () => {
  const src = 'k_src3', model = new Model();
  await createSource(c, src);
  createTunnel(src, 'k3', 'Stream');
  const r1 = run(src, 'k3', undefined, TOPICS[2]);
  await r1.waitLog(/connected|channel/i, 30000).catch(() => {});
  await writeStream(c, src, { ops: 200, idMax: 150, seed: 5, model });
  await waitComplete(TOPICS[2], model, 90000);
  await mock.command('down');
  await writeStream(c, src, { ops: 200, idMax: 150, seed: 6, model });
  await waitFor(() => /lunnel\.sinks\.kafka: cdc3: .*(without a delivery report|not delivered)/.test(r1.stderr()), 60000, 'a failed batch in the log');
  await new Promise((res) => setTimeout(res, 1500)); // several checkpoint intervals pass
  const e1 = await r1.stop('SIGKILL');
  assert.equal(e1.signal, 'SIGKILL');
  await mock.command('up');
  const r2 = run(src, 'k3', undefined, TOPICS[2]);
  try {
    await waitComplete(TOPICS[2], model, 120000);
  } finally {
    const e = await r2.stop('SIGTERM');
    assert.equal(e.code, 0, r2.stderr().slice(-2000));
  }
});
