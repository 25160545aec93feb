// ids.mjs: helpers of the failure/scale tests of `lunnel run` (run_policy, run_faults,
// run_crash, run_scale): read what tests/node/run_ids.lua wrote (<dir>/<channel>.ids: "#open"
// markers and "<id> <v>" lines) and check it against the ids that were written.
import fs from 'node:fs';
import path from 'node:path';
import { killAll as killAllProcesses, sleep, sourceDir } from '../../harness/index.mjs';

export const idsScript = path.join(sourceDir, 'tests/node/run_ids.lua');

// { channel: [segment, ...] } where a segment is [{id, v}, ...] after one "#open".
// A trailing line without its newline (a kill -9 mid-write) is ignored.
export function readIds(dir) {
  const out = {};
  if (!fs.existsSync(dir)) return out;
  for (const f of fs.readdirSync(dir).filter((n) => n.endsWith('.ids'))) {
    const ch = f.slice(0, -4);
    const segs = [];
    let text = fs.readFileSync(path.join(dir, f), 'utf8');
    const cut = text.lastIndexOf('\n');
    text = cut < 0 ? '' : text.slice(0, cut);
    for (const l of text.split('\n')) {
      if (!l) continue;
      if (l === '#open') { segs.push([]); continue; }
      const [id, v, t] = l.split(' ');
      if (!segs.length) segs.push([]);
      segs[segs.length - 1].push({ id: Number(id), v, t: t === undefined ? undefined : Number(t) });
    }
    out[ch] = segs;
  }
  return out;
}

// How many id lines the directory holds (cheap progress probe).
export function countIds(dir) {
  let n = 0;
  if (!fs.existsSync(dir)) return 0;
  for (const f of fs.readdirSync(dir).filter((x) => x.endsWith('.ids'))) {
    const t = fs.readFileSync(path.join(dir, f), 'utf8');
    for (let i = 0; i < t.length; i++) if (t.charCodeAt(i) === 10) n++;
    n -= (t.match(/#open\n/g) || []).length;
  }
  return n;
}

// Every delivered id (all channels, all segments, all dirs), with repetitions.
export function allIds(dirs) {
  const ids = [];
  for (const d of dirs) for (const segs of Object.values(readIds(d))) for (const s of segs) for (const r of s) ids.push(r.id);
  return ids;
}

// Ids in [0, n) that never arrived, and ids that arrived more than once.
export function missingAndDuplicates(ids, n) {
  const seen = new Uint32Array(n);
  let extra = 0;
  for (const id of ids) {
    if (!(id >= 0 && id < n)) { extra++; continue; }
    seen[id]++;
  }
  const missing = [], dups = [];
  for (let i = 0; i < n; i++) {
    if (seen[i] === 0) missing.push(i);
    else if (seen[i] > 1) dups.push(i);
  }
  return { missing, dups, extra };
}

export { sleep };

// The emulator's view of a tunnel (admin `tunnels`): {channels: [{channel_id, status,
// client_id, count, parent, ...}], clients: [...]}.
export async function tunnelState(emu, tunnelName) {
  const s = await emu.admin('tunnels', {});
  return s.tunnels.find((t) => t.tunnel_name === tunnelName);
}

// The harness tracks every process it starts; track() stays for the tests that call it, and
// killAll() SIGKILLs every lunnel process still running (an after() hook's cleanup).
export function track(run) { return run; }
export function killAll() { return killAllProcesses('lunnel'); }
