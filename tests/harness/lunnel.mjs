// lunnel.mjs: `lunnel` processes of the end-to-end tests. startRun starts `lunnel run` against
// an emulator with fast settings and the collector script (tests/node/run_collect.lua, which
// writes every record as a JSON line per channel into custom.dir); startLunnel starts any
// lunnel command with the emulator's credentials; runLunnel (runLunnelSync) runs one to its exit. readRecords
// and countRecords read what the collector wrote.
import fs from 'node:fs';
import path from 'node:path';
import { lunnelBinary, sourceDir } from './paths.mjs';
import { spawnSync } from 'node:child_process';
import { runProcess, startProcess } from './proc.mjs';

export const collectScript = path.join(sourceDir, 'tests/node/run_collect.lua');

// Fast settings so every phase takes a few heartbeats of 0.1 s.
export const FAST = ['--heartbeat-interval', '0.1', '--heartbeat-timeout', '3', '--checkpoint-interval', '0.2',
  '--max-backoff', '0.2', '--reconnect-delay-max', '0.2', '--drain-timeout', '20', '--workers', '2', '--no-watch'];

// The environment that gives lunnel the emulator's keys (never on the command line).
export function credentialsEnv(emu) {
  return { TABLESTORE_ACCESS_KEY_ID: emu.accessKeyId, TABLESTORE_ACCESS_KEY_SECRET: emu.accessKeySecret };
}

// `--endpoint E --instance I` of an emulator.
export function connArgs(emu) {
  return ['--endpoint', emu.endpoint, '--instance', emu.instance];
}

// Starts `lunnel ARGS...` (with emu's credentials when emu is given); a process of proc.mjs.
export function startLunnel(args, { emu = null, env = {}, ...opts } = {}) {
  return startProcess(lunnelBinary(), args, { env: { ...(emu ? credentialsEnv(emu) : {}), ...env }, name: `lunnel ${args[0]}`, group: 'lunnel', ...opts });
}

// Runs `lunnel ARGS...` to its exit; resolves {code, signal, stdout, stderr, ms, timedOut}.
export function runLunnel(args, { emu = null, env = {}, ...opts } = {}) {
  return runProcess(lunnelBinary(), args, { env: { ...(emu ? credentialsEnv(emu) : {}), ...env }, name: `lunnel ${args[0]}`, ...opts });
}

// runLunnel, blocking (SIGKILL after timeoutMs): for a short command against a server in
// another process (never one this process serves: its event loop is blocked meanwhile).
// Returns {code, signal, stdout, stderr}.
export function runLunnelSync(args, { emu = null, env = {}, timeoutMs = 30000 } = {}) {
  const r = spawnSync(lunnelBinary(), args, { env: { ...process.env, ...(emu ? credentialsEnv(emu) : {}), ...env }, encoding: 'utf8', timeout: timeoutMs, killSignal: 'SIGKILL' });
  return { code: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
}

// Starts `lunnel run`; resolves at once. `exited` resolves {code, signal}.
// noCustom: pass no --custom (a --config file supplies it).
export function startRun(emu, { table, tunnel, create, dir, custom = {}, args = [], script = collectScript, noCustom = false, fast = true } = {}) {
  const fullCustom = JSON.stringify({ dir, ...custom });
  const argv = ['run', ...connArgs(emu), '--table', table, '--tunnel', tunnel,
    ...(create ? ['--create', create] : []), ...(noCustom ? [] : ['--custom', fullCustom]), ...(fast ? FAST : []), ...args, script];
  return startLunnel(argv, { emu });
}

// Every line the collector wrote, in file order per channel: [{ch, action, pk, cols}]. Only
// complete lines: a run still writing may have flushed part of its last line.
export function readRecords(dir) {
  const out = [];
  // base-data channels first: for BaseAndStream their records precede every stream record
  const rank = (n) => (n.startsWith('BaseData_') ? '0' : '1') + n;
  const files = fs.readdirSync(dir).filter((n) => n.endsWith('.jsonl')).sort((a, b) => rank(a).localeCompare(rank(b)));
  for (const f of files) {
    const lines = fs.readFileSync(path.join(dir, f), 'utf8').split('\n');
    lines.pop(); // after the last newline: empty, or a line being written
    for (const l of lines) if (l) out.push(JSON.parse(l));
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
