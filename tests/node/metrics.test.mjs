// metrics.test.mjs: `lunnel run --metrics-listen` end to end (/metrics, /healthz, /readyz).
// A Stream tunnel gets puts, updates and deletes written with the official SDK; /metrics is
// scraped during the run and its per-action record counters must equal what was written,
// batches / bytes / latency histograms / checkpoints / Lua memory must be there; /healthz and
// /readyz answer 200; once the emulator stops, /readyz turns 503 (heartbeats fail) while
// /healthz stays 200 (the loop itself is fine).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { test } from 'node:test';
import {
  startEmulator, I, S, countRecords, createTable, deleteRow, putRow, startRun, tempDir, updateRow,
  waitFor
} from '../harness/index.mjs';

// GET http://127.0.0.1:port/p -> {status, body}; never hangs past timeoutMs.
export function get(port, p, timeoutMs = 5000) {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: p, timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { body += d; });
      res.on('end', () => resolve({ status: res.statusCode, body, type: res.headers['content-type'] }));
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${p} timed out`)));
    req.on('error', reject);
  });
}

// Prometheus text -> Map("name{labels}" -> number); also checks every sample line parses.
export function parseMetrics(text) {
  const m = new Map();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const mm = line.match(/^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{[^}]*\})?) (\S+)$/);
    if (!mm) throw new Error(`bad sample line: ${line}`);
    m.set(mm[1], Number(mm[2]));
  }
  return m;
}

// Sum of the samples of `name` whose labels include every `match` pair.
export function sum(m, name, match = {}) {
  let s = 0;
  for (const [k, v] of m) {
    const mm = k.match(/^([^{]+)(?:\{(.*)\})?$/);
    if (mm[1] !== name) continue;
    const labels = Object.fromEntries([...(mm[2] || '').matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.entries(match).every(([a, b]) => labels[a] === b)) s += v;
  }
  return s;
}

test('/metrics counts what was written; /readyz turns unready when the emulator stops', { timeout: 90000 }, async () => {
  const emu = await startEmulator();
  let run;
  try {
    const c = emu.client();
    const table = 'mx', dir = tempDir(), portFile = path.join(tempDir(), 'port');
    await createTable(c, table);
    run = startRun(emu, {
      table, tunnel: 'tmx', create: 'Stream', dir,
      args: ['--metrics-listen', '127.0.0.1:0', '--metrics-port-file', portFile],
    });
    const port = Number(await waitFor(() => fs.existsSync(portFile) && fs.readFileSync(portFile, 'utf8').trim(), 20000, 'port file'));
    assert.ok(port > 0);
    // the port file is written before the log line reaches our pipe: wait for the line
    await run.waitLog(new RegExp(`metrics listening url=http://127\\.0\\.0\\.1:${port}/metrics`), 20000);
    await waitFor(async () => (await get(port, '/readyz')).status === 200, 20000, '/readyz 200');
    assert.equal((await get(port, '/healthz')).status, 200);
    assert.equal((await get(port, '/nope')).status, 404);

    // 120 puts, 60 updates, 30 deletes over 40 keys
    const want = { PUT: 0, UPDATE: 0, DELETE: 0 };
    for (let n = 0; n < 120; n++) { await putRow(c, table, n % 40, `k${n}`, { s: S(`v${n}`), i: I(n) }); want.PUT++; }
    for (let n = 0; n < 60; n++) { await updateRow(c, table, n % 40, `k${n}`, { put: { s: S(`u${n}`) } }); want.UPDATE++; }
    for (let n = 0; n < 30; n++) { await deleteRow(c, table, n % 40, `k${n}`); want.DELETE++; }
    const total = want.PUT + want.UPDATE + want.DELETE;
    await waitFor(() => countRecords(dir) >= total, 30000, `${total} records collected`);

    // the counters move when each completion reaches the loop: wait for them, then compare exactly
    let m;
    await waitFor(async () => {
      const r = await get(port, '/metrics');
      m = parseMetrics(r.body);
      return r.status === 200 && sum(m, 'lunnel_records_processed_total') >= total &&
        sum(m, 'lunnel_checkpoints_total', { result: 'ok' }) > 0;
    }, 20000, 'records counters and a checkpoint');
    const r = await get(port, '/metrics');
    assert.match(r.type, /^text\/plain; version=0\.0\.4/);
    m = parseMetrics(r.body);
    for (const a of ['PUT', 'UPDATE', 'DELETE'])
      assert.equal(sum(m, 'lunnel_records_processed_total', { action: a }), want[a], `records ${a}`);
    assert.equal(sum(m, 'lunnel_records_read_total'), total, 'records read = records written');
    const okBatches = sum(m, 'lunnel_batches_processed_total', { result: 'ok' });
    assert.ok(okBatches >= 1 && okBatches <= total, `batches ${okBatches}`);
    assert.equal(sum(m, 'lunnel_batches_processed_total', { result: 'failed' }), 0);
    assert.equal(m.get('lunnel_process_seconds_count'), okBatches, 'one latency sample per batch');
    assert.equal(m.get('lunnel_process_seconds_bucket{le="+Inf"}'), okBatches);
    assert.ok(m.get('lunnel_read_records_seconds_count') >= okBatches, 'read latency samples');
    assert.ok(sum(m, 'lunnel_read_bytes_total') > total * 20, 'read bytes');
    assert.ok(sum(m, 'lunnel_channels', { state: 'running' }) >= 1, 'a running channel');
    assert.ok(sum(m, 'lunnel_stream_lag_seconds') >= 0 && [...m.keys()].some((k) => k.startsWith('lunnel_stream_lag_seconds{')), 'stream lag per channel');
    assert.ok(sum(m, 'lunnel_lua_memory_bytes', { worker: '0' }) > 10000, 'Lua memory of worker 0');
    assert.ok(sum(m, 'lunnel_lua_memory_bytes', { worker: '1' }) > 10000, 'Lua memory of worker 1');
    assert.equal(m.get('lunnel_script_reloads_total{result="ok"}'), 0);
    assert.equal(m.get('lunnel_script_version'), 1);
    assert.equal(m.get('lunnel_connected'), 1);
    assert.equal(m.get('lunnel_batch_retries_total'), 0);
    assert.ok(m.get('lunnel_http_attempts_total') > 0);
    assert.ok(m.get('process_cpu_seconds_total') > 0);

    // the emulator goes away: heartbeats fail, /readyz says so; the loop itself stays healthy
    await emu.stop();
    const t0 = Date.now();
    const nr = await waitFor(async () => { const x = await get(port, '/readyz'); return x.status === 503 && x; }, 15000, '/readyz 503');
    assert.match(nr.body, /^not ready: /);
    assert.ok(Date.now() - t0 < 15000);
    assert.equal((await get(port, '/healthz')).status, 200);
    let m2;
    // failed calls show as retries first (inside each call's retry window), then as errors
    await waitFor(async () => {
      m2 = parseMetrics((await get(port, '/metrics')).body);
      return m2.get('lunnel_http_retries_total') > 0 || sum(m2, 'lunnel_errors_total') > 0;
    }, 15000, 'retries or errors counted');
    assert.equal(m2.get('lunnel_connected'), 0);
    assert.equal(sum(m2, 'lunnel_records_processed_total'), total, 'no record counted twice');
  } finally {
    await run?.stop('SIGKILL');
    await emu.stop();
  }
});

test('--metrics-listen with a bad address is a usage error', { timeout: 30000 }, async () => {
  const emu = await startEmulator();
  try {
    const c = emu.client();
    await createTable(c, 'mxbad');
    const run = startRun(emu, { table: 'mxbad', tunnel: 't', create: 'Stream', dir: tempDir(), args: ['--metrics-listen', 'nonsense'] });
    const r = await run.exited;
    assert.equal(r.code, 2, run.stderr());
    assert.match(run.stderr(), /--metrics-listen nonsense: expected HOST:PORT/);
  } finally {
    await emu.stop();
  }
});

test('a failing batch shows as a failed batch, an error by code and a retry; its records count once', { timeout: 60000 }, async () => {
  const emu = await startEmulator();
  let run;
  try {
    const c = emu.client();
    const table = 'mxfail', tmp = tempDir(), portFile = path.join(tmp, 'port');
    await createTable(c, table);
    // fails the first batch it sees (per Lua worker: --workers 1), then succeeds
    const script = path.join(tmp, 'fail_once.lua');
    fs.writeFileSync(script, [
      'local M, failed, seen = {}, false, 0',
      'function M.process(ctx, batch)',
      '  if not failed then failed = true; error("first batch fails") end',
      '  seen = seen + #batch',
      'end',
      'return M', ''].join('\n'));
    run = startRun(emu, {
      table, tunnel: 'tf', create: 'Stream', dir: tmp, script,
      args: ['--workers', '1', '--metrics-listen', '127.0.0.1:0', '--metrics-port-file', portFile],
    });
    const port = Number(await waitFor(() => fs.existsSync(portFile) && fs.readFileSync(portFile, 'utf8').trim(), 20000, 'port file'));
    await run.waitLog(/to=running/);
    for (let n = 0; n < 20; n++) await putRow(c, table, n, 'f', { s: S(`v${n}`) });
    let m;
    await waitFor(async () => {
      m = parseMetrics((await get(port, '/metrics')).body);
      return sum(m, 'lunnel_records_processed_total') >= 20;
    }, 30000, '20 records processed');
    assert.equal(sum(m, 'lunnel_records_processed_total', { action: 'PUT' }), 20);
    assert.equal(sum(m, 'lunnel_batches_processed_total', { result: 'failed' }), 1);
    assert.equal(m.get('lunnel_errors_total{code="script_error"}'), 1);
    assert.equal(m.get('lunnel_batch_retries_total'), 1);
    assert.equal(m.get('lunnel_process_seconds_count'), sum(m, 'lunnel_batches_processed_total'));
  } finally {
    await run?.stop('SIGKILL');
    await emu.stop();
  }
});
