// sink_jsonl_http.test.mjs: the JSON Lines and HTTP sinks under `lunnel run` against
// lunnel-emulator. Changes written with the official Node.js SDK must arrive exactly:
// examples/to_jsonl.lua (one file per channel, rotated by size: every line kept, in order per
// key) and examples/post_http.lua (a local receiver answering 503 to the first requests: the
// sink retries, every record arrives once, per-key order kept).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { test } from 'node:test';
import {
  Model, S, I, createTable, deleteRow, putRow, sourceDir, startRun, tempDir,
  updateRow, waitFor
} from '../harness/index.mjs';
import { emulatorForFile } from './lib/file_emulator.mjs';

const suite = emulatorForFile();

async function writeChanges(table) {
  const model = new Model();
  for (let id = 1; id <= 30; id++) await putRow(suite.c, table, id, 'a', { s: S(`row ${id} ${'x'.repeat(id)}`), n: I(id) }, model);
  for (let id = 1; id <= 10; id++) await updateRow(suite.c, table, id, 'a', { put: { s: S(`upd ${id}`) }, deleteAll: ['n'] }, model);
  for (let id = 1; id <= 5; id++) await deleteRow(suite.c, table, id, 'a', model);
  return model;
}

// Per key "id": the list of actions, from records shaped like r:tojson().
function actionsByKey(records) {
  const m = new Map();
  for (const r of records) {
    const k = String(r.pk.id);
    if (!m.has(k)) m.set(k, []);
    m.get(k).push(r.action);
  }
  return m;
}
function expectedActions(model) {
  const m = new Map();
  for (const [key, recs] of model.byKey) m.set(key.split('|')[0], recs.map((r) => r.action));
  return m;
}

async function stopOk(run) {
  const r = await run.stop('SIGTERM');
  assert.equal(r.code, 0, `lunnel run exit ${JSON.stringify(r)}; stderr:\n${run.stderr().slice(-3000)}`);
}

test('examples/to_jsonl.lua: every change once, per channel file, rotation keeps every line', { timeout: 60000 }, async () => {
  const table = 'sink_jsonl', dir = tempDir('lunnel-jsonl-');
  await createTable(suite.c, table);
  const run = startRun(suite.emu, {
    table, tunnel: 'tj', create: 'Stream', dir, script: path.join(sourceDir, 'examples/to_jsonl.lua'),
    custom: { max_bytes: 2048, keep: 100, fsync: 'batch' },
  });
  try {
    await run.waitLog(/to=running/);
    const model = await writeChanges(table);
    // files in rotation order: <ch>.jsonl.N (oldest) ... <ch>.jsonl.1, then <ch>.jsonl
    const readAll = () => {
      const byChannel = new Map();
      for (const f of fs.readdirSync(dir)) {
        const m = f.match(/^(.*)\.jsonl(?:\.(\d+))?$/);
        if (!m) continue;
        if (!byChannel.has(m[1])) byChannel.set(m[1], []);
        byChannel.get(m[1]).push({ f, n: m[2] ? Number(m[2]) : 0 });
      }
      const recs = [];
      let rotated = 0;
      for (const files of byChannel.values()) {
        files.sort((a, b) => b.n - a.n);
        for (const { f, n } of files) {
          if (n > 0) rotated++;
          for (const l of fs.readFileSync(path.join(dir, f), 'utf8').split('\n')) if (l) recs.push(JSON.parse(l));
        }
      }
      return { recs, rotated };
    };
    await waitFor(() => readAll().recs.length >= model.count, 30000, `${model.count} lines`);
    await stopOk(run);
    const { recs, rotated } = readAll();
    assert.equal(recs.length, model.count);
    assert.deepEqual(actionsByKey(recs), expectedActions(model));
    assert.ok(rotated > 0, 'a 2 KiB max_bytes must have rotated files');
    const upd = recs.find((r) => r.action === 'UPDATE' && r.pk.id === 3);
    assert.equal(upd.cols.s, 'upd 3');
    assert.deepEqual(upd.deleted, ['n']);
  } finally {
    if (run.child.exitCode === null) await run.stop('SIGKILL');
  }
});

test('examples/post_http.lua: batches POSTed, 503s retried, every record once in order', { timeout: 60000 }, async () => {
  const table = 'sink_http';
  await createTable(suite.c, table);
  const got = [];
  let requests = 0;
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (d) => chunks.push(d));
    req.on('end', () => {
      requests++;
      if (requests <= 3) { res.writeHead(503); res.end('warming up'); return; }
      for (const r of JSON.parse(Buffer.concat(chunks).toString('utf8'))) got.push(r);
      res.writeHead(200); res.end('ok');
    });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${server.address().port}/ingest`;
  const run = startRun(suite.emu, {
    table, tunnel: 'th', create: 'Stream', dir: tempDir(), script: path.join(sourceDir, 'examples/post_http.lua'),
    custom: { url, retries: 10, backoff: 0.01 },
  });
  try {
    await run.waitLog(/to=running/);
    const model = await writeChanges(table);
    await waitFor(() => got.length >= model.count, 30000, `${model.count} records posted`);
    await stopOk(run);
    assert.equal(got.length, model.count);
    assert.deepEqual(actionsByKey(got), expectedActions(model));
    assert.ok(requests > 3);
  } finally {
    if (run.child.exitCode === null) await run.stop('SIGKILL');
    server.close();
  }
});
