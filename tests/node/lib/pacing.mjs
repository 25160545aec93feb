// pacing.mjs: helpers of the failure-pacing tests (run_pacing_*.test.mjs, run_chaos.test.mjs):
// the bound README "Failures and pacing" states, the emulator's request counts per path, and
// what tests/node/run_fail.lua recorded.
import fs from 'node:fs';
import path from 'node:path';
import { sourceDir } from '../../harness/index.mjs';

export const failScript = path.join(sourceDir, 'tests/node/run_fail.lua');

// README "Failures and pacing": per failing channel at most REQUESTS_PER_STEP requests and
// LOG_LINES_PER_STEP log lines (at --log-level info) per backoff step; steps are at least
// 1 s apart and double up to 60 s.
export const REQUESTS_PER_STEP = 12;
export const LOG_LINES_PER_STEP = 8;

// How many backoff steps can begin within `seconds` of the first failure: at 0, 1, 3, 7, 15,
// ... s (each wait is at least 1, 2, 4, ... s).
export function maxSteps(seconds) {
  let n = 0;
  for (let t = 0, w = 1; t <= seconds; t += w, w = Math.min(w * 2, 60)) n++;
  return n;
}

// {"/tunnel/readrecords": requests, ...} since the last reset (admin tunnel_stats).
export async function requestCounts(emu, reset = false) {
  const s = await emu.admin('tunnel_stats', reset ? { reset: true } : {});
  const out = {};
  for (const [p, v] of Object.entries(s.paths || {})) out[p] = v.requests;
  return out;
}

// The calls run_fail.lua noted: {open: n, process: n, shutdown: n, byChannel: {ch: {...}}}.
export function scriptCalls(dir) {
  const out = { open: 0, process: 0, shutdown: 0, byChannel: {} };
  const f = path.join(dir, 'calls.log');
  if (!fs.existsSync(f)) return out;
  for (const l of fs.readFileSync(f, 'utf8').split('\n')) {
    const [what, ch] = l.split(' ');
    if (!what || !(what in out)) continue;
    out[what]++;
    out.byChannel[ch] ??= { open: 0, process: 0, shutdown: 0 };
    out.byChannel[ch][what]++;
  }
  return out;
}

// Lines of a process's stderr.
export function lineCount(text) {
  return text.split('\n').filter((l) => l.length > 0).length;
}
