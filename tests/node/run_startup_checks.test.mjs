// run_startup_checks.test.mjs: what can be checked at start-up fails at start-up, before any
// request (counted with the emulator's tunnel_stats), with exit 2 and one line naming the
// flag: an unwritable --dead-letter, --dead-letter without --on-error skip, --tunnel-id of a
// tunnel of another table, --exit-when-done on a Stream tunnel, a bad --config value (file and
// key named; a syntax error never quotes the file's text, which may hold a secret). Also: a
// non-Tablestore endpoint (another web server) ends `lunnel tunnel list` and `lunnel run` in
// seconds with one line saying so; two processes started at the same moment draw different
// reconnect delays; with --log-format json the final fatal line is JSON too.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { test } from 'node:test';
import {
  createTable, freePort, runLunnel, startLunnel, startRun, tempDir, waitFor, withTimeout
} from '../harness/index.mjs';
import { emulatorForFile } from './lib/file_emulator.mjs';
import { killAll, track } from './lib/ids.mjs';
import { failScript, requestCounts } from './lib/pacing.mjs';

const SECRET = 'Sup3r-Secret-Value-42';

const suite = emulatorForFile({}, { cleanup: killAll });

// Runs the lunnel binary to its exit: {code, stderr, ms}.
function lunnel(args, { env = {}, timeoutMs = 30000 } = {}) {
  return runLunnel(args, { emu: suite.emu, env, timeoutMs });
}

const runArgs = (more) => ['run', '--endpoint', suite.emu.endpoint, '--instance', suite.emu.instance, ...more];

test('an unwritable --dead-letter exits 2 before any request', { timeout: 30000 }, async () => {
  const table = 'sdl';
  await createTable(suite.c, table);
  await requestCounts(suite.emu, true);
  const r = await lunnel(runArgs(['--table', table, '--tunnel', 't', '--create', 'Stream', '--on-error', 'skip',
    '--dead-letter', '/proc/nope/dl.jsonl', failScript]));
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /--dead-letter \/proc\/nope\/dl\.jsonl: No such file or directory/);
  const counts = await requestCounts(suite.emu);
  assert.deepEqual(counts, {}, 'no request before the dead letter is known to be writable');
});

test('--dead-letter without --on-error skip is a usage error', { timeout: 30000 }, async () => {
  const r = await lunnel(runArgs(['--table', 'x', '--tunnel', 't', '--dead-letter', path.join(tempDir(), 'dl'), failScript]));
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /--dead-letter is used only with --on-error skip/);
});

test('--tunnel-id of a tunnel on another table than --table is a usage error', { timeout: 30000 }, async () => {
  await createTable(suite.c, 'sta');
  await createTable(suite.c, 'stb');
  const r0 = await lunnel(['tunnel', 'create', '--endpoint', suite.emu.endpoint, '--instance', suite.emu.instance,
    '--table', 'sta', '--tunnel', 'ta', '--type', 'Stream', '--json']);
  assert.equal(r0.code, 0, r0.stderr);
  const id = await tunnelIdOf('sta', 'ta');
  await requestCounts(suite.emu, true);
  const r = await lunnel(runArgs(['--table', 'stb', '--tunnel-id', id, failScript]));
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, new RegExp(`--tunnel-id ${id} is a tunnel of table sta, not of --table stb`));
  const counts = await requestCounts(suite.emu);
  assert.equal(counts['/tunnel/connect'] || 0, 0, JSON.stringify(counts));
  // --exit-when-done on a Stream tunnel: it never finishes
  const r2 = await lunnel(runArgs(['--tunnel-id', id, '--exit-when-done', failScript]));
  assert.equal(r2.code, 2, r2.stderr);
  assert.match(r2.stderr, /--exit-when-done: tunnel .* is a Stream tunnel/);
  const r3 = await lunnel(runArgs(['--table', 'sta', '--tunnel', 'ta', '--exit-when-done', failScript]));
  assert.equal(r3.code, 2, r3.stderr);
  assert.match(r3.stderr, /--exit-when-done: tunnel .* is a Stream tunnel/);
  assert.equal((await requestCounts(suite.emu))['/tunnel/connect'] || 0, 0);
});

async function tunnelIdOf(table, name) {
  const s = await suite.emu.admin('tunnels', {});
  const t = s.tunnels.find((x) => x.tunnel_name === name && x.table === table);
  assert.ok(t, JSON.stringify(s.tunnels.map((x) => [x.table, x.table_name, x.tunnel_name])));
  return t.tunnel_id;
}

test('a --config error names the file and the key; a syntax error never quotes a secret', { timeout: 30000 }, async () => {
  const dir = tempDir();
  const bad = path.join(dir, 'bad.lua');
  fs.writeFileSync(bad, 'return { table = "x", tunnel = "t", heartbeat_interval = "soon" }\n');
  const r = await lunnel(['run', '--config', bad, failScript]);
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, new RegExp(`--config ${bad}: key heartbeat_interval: --heartbeat-interval expects`));
  const broken = path.join(dir, 'broken.lua');
  fs.writeFileSync(broken, `return { table = "x", access_key_secret = "${SECRET}\n`);
  const r2 = await lunnel(['run', '--config', broken, failScript]);
  assert.equal(r2.code, 2, r2.stderr);
  assert.match(r2.stderr, new RegExp(`--config ${broken}:`));
  assert.ok(!r2.stderr.includes(SECRET), r2.stderr);
  // usage errors with a secret given on the command line never echo it
  for (const extra of [['--on-error', 'nope'], ['--heartbeat-interval', 'x'], ['--bogus-flag'], []]) {
    const r3 = await lunnel(['run', '--access-key-secret', SECRET, '--security-token', SECRET, ...extra]);
    assert.equal(r3.code, 2, r3.stderr);
    assert.ok(!r3.stderr.includes(SECRET), r3.stderr);
  }
});

test('a non-Tablestore endpoint fails fast with one line saying so', { timeout: 60000 }, async () => {
  for (const status of [404, 501]) {
    const srv = http.createServer((req, res) => {
      req.resume();
      req.on('end', () => { res.writeHead(status, { 'content-type': 'text/html' }); res.end('<html><body>Not here</body></html>'); });
    });
    await new Promise((r) => srv.listen(0, '127.0.0.1', r));
    const ep = `http://127.0.0.1:${srv.address().port}`;
    try {
      const r = await lunnel(['tunnel', 'list', '--endpoint', ep, '--instance', 'i']);
      assert.equal(r.code, 1, r.stderr);
      assert.ok(r.ms < 10000, `${r.ms} ms`);
      assert.match(r.stderr, new RegExp(`${ep} does not look like a Tablestore endpoint`));
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
      const r2 = await lunnel(['run', '--endpoint', ep, '--instance', 'i', '--tunnel-id', 'abc', failScript]);
      assert.equal(r2.code, 1, r2.stderr);
      assert.ok(r2.ms < 10000, `${r2.ms} ms`);
      assert.match(r2.stderr, /does not look like Tablestore/);
      const r3 = await lunnel(['run', '--endpoint', ep, '--instance', 'i', '--table', 'x', '--tunnel', 't', failScript]);
      assert.equal(r3.code, 1, r3.stderr);
      assert.ok(r3.ms < 10000, `${r3.ms} ms`);
      assert.match(r3.stderr, /does not look like Tablestore/);
    } finally {
      await new Promise((r) => srv.close(r));
    }
  }
});

test('a long retry window shows progress', { timeout: 60000 }, async () => {
  const port = await freePort();
  const r = await lunnel(['tunnel', 'list', '--endpoint', `http://127.0.0.1:${port}`, '--instance', 'i', '--retry-window', '3s']);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /retrying path=\/tunnel\/list attempt=3 .*Connection refused|retrying path=\/tunnel\/list attempt=3 .*transport/);
});

test('two processes started at the same moment draw different reconnect delays', { timeout: 60000 }, async () => {
  const port = await freePort(); // nobody listens: every Connect fails at once
  const args = ['run', '--endpoint', `http://127.0.0.1:${port}`, '--instance', 'i', '--tunnel-id', 'abc',
    '--retry-window', '0', '--reconnect-delay-max', '30', '--log-level', 'info', failScript];
  const spawnOne = () => startLunnel(args, { env: { TABLESTORE_ACCESS_KEY_ID: 'k', TABLESTORE_ACCESS_KEY_SECRET: 's' } });
  const a = spawnOne(), b = spawnOne();
  const delay = (p) => (p.stderr().match(/reconnecting delay_s=([0-9.]+)/) || [])[1];
  try {
    await waitFor(() => delay(a) && delay(b), 20000, 'both processes to schedule a reconnect');
    assert.notEqual(delay(a), delay(b), `${a.stderr()}\n---\n${b.stderr()}`);
  } finally {
    await Promise.all([a.stop('SIGKILL'), b.stop('SIGKILL')]);
  }
});

test('--log-format json: the final fatal line is JSON too', { timeout: 60000 }, async () => {
  const table = 'sjson', dir = tempDir();
  await createTable(suite.c, table);
  const run = track(startRun(suite.emu, { table, tunnel: 't', create: 'Stream', dir, script: failScript, args: ['--log-format', 'json'] }));
  await run.waitLog(/"to":"running"/);
  const st = await suite.emu.admin('tunnels', {});
  const t = st.tunnels.find((x) => x.tunnel_name === 't' && x.table === table);
  await suite.emu.admin('expire_tunnel', { tunnel_id: t.tunnel_id });
  const r = await withTimeout(run.exited, 30000, 'exit after the tunnel expired');
  assert.ok(!(r instanceof Error), run.stderr().slice(-2000));
  assert.equal(r.code, 4, run.stderr().slice(-2000));
  const lines = run.stderr().trim().split('\n');
  for (const l of lines) JSON.parse(l); // every line, the last included
  const last = JSON.parse(lines[lines.length - 1]);
  assert.equal(last.exit_status, 4);
  assert.match(last.msg, /OTSTunnelExpired/);
  // numbers are JSON numbers
  const stopped = lines.map((l) => JSON.parse(l)).find((o) => o.msg === 'worker stopped');
  assert.equal(typeof stopped.status, 'number');
  assert.equal(typeof stopped.records, 'number');
});
