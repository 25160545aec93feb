// proc.mjs: one wrapper for every process a test starts (lunnel-emulator, lunnel, helpers):
// output captured (in memory, or in files for a process that outlives the harness), waits on
// its output with deadlines that fail at once when the process has exited, and a stop that
// escalates to SIGKILL after a deadline. Every process still running when the test process
// exits is killed, so no test leaves a server behind.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { waitFor, withTimeout } from './wait.mjs';

const live = new Set();
process.on('exit', () => {
  for (const p of live) if (!p.detached) try { p.child.kill('SIGKILL'); } catch { /* already gone */ }
});

// Keeps at most `limit` characters of a growing text: the first half and the last half.
function appendBounded(text, chunk, limit) {
  text += chunk;
  if (text.length <= limit) return text;
  const half = limit >> 1;
  return `${text.slice(0, half)}\n[... output trimmed ...]\n${text.slice(-half)}`;
}

// Starts bin with args. Options:
//   env          added to process.env
//   outputLimit  characters of stdout and of stderr kept (default 64 MiB; first and last halves)
//   logTo        a path prefix: stdout goes to `${logTo}.out`, stderr to `${logTo}.err` (files,
//                not pipes), and the process is detached (its own process group), so it may
//                outlive the harness (the CLI); stdout()/stderr() read those files
//   name         how errors name it (default: the binary's base name)
//   group        a label for killAll(group) (startLunnel uses 'lunnel')
//   stdin        'pipe' to write to child.stdin (default: no input)
// Returns { child, pid, name, exited (resolves {code, signal} once its output is complete),
// stdout(), stderr(), waitStdout(re, ms), waitLog(re, ms), running(), stop(signal, ms), kill(signal) }.
export function startProcess(bin, args = [], { env = {}, outputLimit = 64 << 20, logTo = null, name = bin.split('/').pop(), group = null, stdin = 'ignore', cwd } = {}) {
  let out = '', err = '';
  let stdio = [stdin, 'pipe', 'pipe'];
  if (logTo) stdio = [stdin, fs.openSync(`${logTo}.out`, 'w'), fs.openSync(`${logTo}.err`, 'w')];
  const child = spawn(bin, args, { stdio, env: { ...process.env, ...env }, detached: !!logTo, cwd });
  if (logTo) { fs.closeSync(stdio[1]); fs.closeSync(stdio[2]); }
  const p = { child, pid: child.pid, name, group, detached: !!logTo, status: null };
  live.add(p);
  if (!logTo) {
    child.stdout.setEncoding('utf8'); // a character split across two reads stays whole
    child.stderr.setEncoding('utf8');
    child.stdout.on('data', (d) => { out = appendBounded(out, d, outputLimit); });
    child.stderr.on('data', (d) => { err = appendBounded(err, d, outputLimit); });
  }
  const readFile = (f) => { try { return fs.readFileSync(f, 'utf8'); } catch { return ''; } };
  p.stdout = logTo ? () => readFile(`${logTo}.out`) : () => out;
  p.stderr = logTo ? () => readFile(`${logTo}.err`) : () => err;
  // 'close', not 'exit': it comes after the last output, so a test that checks the final
  // line after the exit sees it
  p.exited = new Promise((resolve) => {
    child.on('error', (e) => { err += `\ncannot start ${bin}: ${e.message}\n`; p.status = { code: null, signal: null, error: e }; live.delete(p); resolve(p.status); });
    child.on('close', (code, signal) => { if (!p.status) p.status = { code, signal }; live.delete(p); resolve(p.status); });
  });
  // alive: not exited yet (signals still reach it); done: exited and its output is complete
  p.running = () => child.exitCode === null && child.signalCode === null && p.status === null;
  const done = () => p.status !== null;
  // Resolves to the match of re in the text of `which` (stdout or stderr); throws when the
  // process has exited without it, or after timeoutMs.
  const waitText = (which, re, timeoutMs, what) => waitFor(() => {
    const m = p[which]().match(re);
    if (m) return m;
    if (done()) {
      const s = p.status;
      if (s.error) throw new Error(`cannot start ${bin}: ${s.error.message}`);
      throw new Error(`${p.name} exited (${s.signal ? `signal ${s.signal}` : s.code}) before ${what}; stderr:\n${p.stderr().slice(-4000)}`);
    }
    return null;
  }, timeoutMs, `${p.name}: ${what}`);
  p.waitStdout = (re, timeoutMs = 20000, what = `stdout ${re}`) => waitText('stdout', re, timeoutMs, what);
  p.waitLog = (re, timeoutMs = 20000, what = `log line ${re}`) => waitText('stderr', re, timeoutMs, what);
  p.kill = (signal = 'SIGKILL') => { if (p.running()) child.kill(signal); };
  // Sends signal (none when null: it is exiting on its own), then SIGKILL after timeoutMs;
  // resolves {code, signal}.
  p.stop = async (signal = 'SIGTERM', timeoutMs = 20000) => {
    if (signal) p.kill(signal);
    const timer = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    try { return await p.exited; } finally { clearTimeout(timer); }
  };
  return p;
}

// SIGKILLs every process of `group` (every one when null) still running, and waits for them:
// an after() hook's cleanup after a failed test (a live child would keep `node --test` waiting).
export async function killAll(group = null, timeoutMs = 2000) {
  await Promise.all([...live].filter((p) => !p.detached && (group === null || p.group === group)).map((p) => p.stop('SIGKILL', timeoutMs)));
}

// Runs bin to its exit (SIGKILL after timeoutMs); resolves {code, signal, stdout, stderr, ms}.
export async function runProcess(bin, args = [], { timeoutMs = 30000, ...opts } = {}) {
  const t0 = Date.now();
  const p = startProcess(bin, args, opts);
  const r = await withTimeout(p.exited, timeoutMs, `${p.name} ${args.join(' ')}`);
  if (r instanceof Error) await p.stop('SIGKILL');
  const s = p.status;
  return { code: s.code, signal: s.signal, stdout: p.stdout(), stderr: p.stderr(), ms: Date.now() - t0, timedOut: r instanceof Error };
}
