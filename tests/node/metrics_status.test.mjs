// metrics_status.test.mjs: the live status line of `lunnel run` and `lunnel tunnel describe
// --watch`, exercised in a pseudo-terminal (`script -qfec` from bsdutils): the status is
// redrawn in place (carriage return + erase line) with records/s, records, channel states
// and BaseData progress; it is absent with --log-format json, with --no-status and when
// stderr is not a terminal. describe --watch redraws the channel table in place on a
// terminal and prints plain snapshots otherwise.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  collectScript, FAST, lunnelBinary, runProcess, startEmulator, startRun, tempDir, withTimeout
} from '../harness/index.mjs';

const q = (s) => `'${String(s).replace(/'/g, `'\\''`)}'`;

// Runs argv under a pseudo-terminal; resolves {code, out} (out = everything the terminal got).
async function inPty(argv, env, timeoutMs = 60000) {
  const r = await runProcess('script', ['-qfec', argv.map(q).join(' '), '/dev/null'], { env, timeoutMs });
  if (r.timedOut) throw new Error(`pty run timed out:\n${(r.stdout + r.stderr).slice(-2000)}`);
  return { code: r.code, out: r.stdout + r.stderr };
}

let emu;
const ROWS = 3000;
before(async () => {
  emu = await startEmulator({ args: ['--partitions', '4'] });
  await emu.admin('load', { table: 'base', rows: ROWS, columns: 2, value_bytes: 16 });
});
after(async () => { await emu?.stop(); });

const creds = () => ({ TABLESTORE_ACCESS_KEY_ID: emu.accessKeyId, TABLESTORE_ACCESS_KEY_SECRET: emu.accessKeySecret });
const runArgv = (tunnel, dir, extra = []) => [lunnelBinary(), 'run', '--endpoint', emu.endpoint, '--instance', emu.instance,
  '--table', 'base', '--tunnel', tunnel, '--create', 'BaseData', '--exit-when-done',
  '--custom', JSON.stringify({ dir, sleep_ms: 600 }), ...FAST, ...extra, collectScript];

test('live status in a terminal: redrawn in place, records, channels, BaseData progress', { timeout: 90000 }, async () => {
  const r = await inPty(runArgv('st1', tempDir()), creds());
  assert.equal(r.code, 0, r.out.slice(-3000));
  const draws = r.out.split('\r\x1b[K').slice(1);
  assert.ok(draws.length >= 2, `status drawn more than once:\n${r.out.slice(-2000)}`);
  assert.ok(draws.some((d) => /rec\/s \| \d+(\.\d+k)? records \| connected \| channels running \d+/.test(d)), `a status line while running:\n${draws.join('\n---\n').slice(-3000)}`);
  // the last drawn status (final numbers, kept on screen) counts every row and shows completion
  const last = draws[draws.length - 1].split('\n')[0];
  assert.match(last, new RegExp(`\\| ${ROWS} records \\|`), last);
  assert.match(last, /done 4\/4 \(100%\)/, last);
  // log lines are not broken by the status: each one starts on a clean line
  assert.match(r.out, /\r\x1b\[K[^\r\n]*worker stopped status=0/);
});

test('no live status with --log-format json, --no-status, or when stderr is not a terminal', { timeout: 90000 }, async () => {
  const j = await inPty(runArgv('st2', tempDir(), ['--log-format', 'json']), creds());
  assert.equal(j.code, 0, j.out.slice(-2000));
  assert.doesNotMatch(j.out, /rec\/s/);
  assert.match(j.out, /"msg":"worker stopped"/);
  const n = await inPty(runArgv('st3', tempDir(), ['--no-status']), creds());
  assert.equal(n.code, 0, n.out.slice(-2000));
  assert.doesNotMatch(n.out, /rec\/s|\x1b\[K/);
  const run = startRun(emu, { table: 'base', tunnel: 'st4', create: 'BaseData', dir: tempDir(), args: ['--exit-when-done'] });
  const e = await withTimeout(run.exited, 60000, 'plain run');
  assert.equal(e.code, 0, run.stderr().slice(-2000));
  assert.doesNotMatch(run.stderr(), /rec\/s|\x1b\[K/);
});

test('tunnel describe --watch: in place on a terminal, snapshots otherwise', { timeout: 60000 }, async () => {
  // st1 exists after the first test; create one here so this test stands alone
  const argv = (t) => [lunnelBinary(), 'tunnel', 'describe', '--endpoint', emu.endpoint, '--instance', emu.instance,
    '--table', 'base', '--tunnel', t, '--watch', '--interval', '200ms', '--iterations', '3'];
  const mk = await inPty([lunnelBinary(), 'tunnel', 'create', '--endpoint', emu.endpoint, '--instance', emu.instance,
    '--table', 'base', '--tunnel', 'w1', '--type', 'BaseData'], creds());
  assert.equal(mk.code, 0, mk.out);
  const t0 = Date.now();
  const r = await inPty(argv('w1'), creds());
  assert.equal(r.code, 0, r.out);
  assert.ok(Date.now() - t0 >= 400, 'two intervals between three refreshes');
  assert.equal(r.out.split('\x1b[H\x1b[2J').length - 1, 3, r.out);
  assert.equal((r.out.match(/^CHANNEL +TYPE +STATUS/gm) || []).length, 3, r.out);
  assert.match(r.out, /every 0\.2s, \d\d:\d\d:\d\d \(Ctrl-C to stop\)/);

  // not a terminal: three plain snapshots, no escape sequences
  const plain = await runProcess(argv('w1')[0], argv('w1').slice(1), { env: creds(), timeoutMs: 20000 });
  const { code, stdout: out } = plain;
  assert.equal(code, 0);
  assert.equal((out.match(/^CHANNEL +TYPE +STATUS/gm) || []).length, 3, out);
  assert.doesNotMatch(out, /\x1b/);
});
