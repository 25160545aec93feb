// bench.mjs: restart and compaction of lunnel-emulator --data-dir with rows, changes and
// tunnels (driven by run.sh). Loads ROWS rows (admin `load`), creates the tunnels with
// `lunnel tunnel create`, rewrites CHANGES rows (200k more changes), then:
//   startup_log       kill -9, restart replaying the write-ahead log (no compaction)
//   compaction_gap    a client pings (ListTable) every 5 ms while a compaction is forced by
//                     a small write past --compact-bytes: the longest gap between answers
//   startup_snapshot  kill -9, restart from the snapshot
// Start-up figures: spawn to the ready line, spawn to the first answer of any kind (a client
// polling from the spawn on), and spawn to the first answered request after the ready line.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { emulatorBinary, freePort, post, startEmulator } from '../../tests/harness/index.mjs';

const rows = Number(process.env.ROWS || 1000000);
const changes = Number(process.env.CHANGES || 200000);
const dir = path.join(mkdtempSync(path.join(tmpdir(), 'lunnel-restart-bench-')), 'data');
const lunnel = path.join(path.dirname(emulatorBinary()), 'lunnel');
const result = (name, v, unit, note = '') => console.log(`RESULT ${name} ${typeof v === 'number' ? v.toFixed(1) : v} ${unit}${note ? ` (${note})` : ''}`);
const big = String(2 ** 36); // no compaction unless asked

// An admin call that may take long (bulk loads of a million rows on a busy machine).
async function admin(emu, action, body) {
  const r = await post(emu.port, `/_emulator/${action}`, JSON.stringify(body), { accessKeyId: emu.accessKeyId, accessKeySecret: emu.accessKeySecret, instance: emu.instance }, 600000);
  if (r.status !== 200) throw new Error(`${action}: HTTP ${r.status} ${r.body}`);
  return JSON.parse(r.body.toString('utf8'));
}

// Starts the emulator on a known port while a client asks (ListTable, every 5 ms) from the
// spawn on: `answer` is when the first reply of any kind came (503 OTSServerBusy while the
// restore runs), `ready` the ready line, `first` the first stats reply after it.
async function timedStart(args) {
  const port = await freePort();
  const t0 = process.hrtime.bigint();
  const since = () => Number(process.hrtime.bigint() - t0) / 1e6;
  let answer = null, stop = false;
  const probe = (async () => {
    while (!stop && answer === null) {
      try {
        await post(port, '/ListTable', Buffer.alloc(0), { accessKeyId: 'lunnel-ak', accessKeySecret: 'lunnel-secret', instance: 'lunnel' }, 600000);
        answer = since();
      } catch { await new Promise((res) => setTimeout(res, 5)); }
    }
  })();
  const emu = await startEmulator({ args: ['--listen', `127.0.0.1:${port}`, ...args], readyTimeoutMs: 600000 });
  const ready = since();
  stop = true;
  await probe;
  const st = await admin(emu, 'stats', {});
  const first = since();
  return { emu, ready, first, answer: answer ?? first, st };
}

async function kill(emu) {
  emu.child.kill('SIGKILL');
  await emu.exited;
}

// Pings ListTable back to back (5 ms apart) until stop(); returns the longest gap (ms)
// between the start of one request and its answer, and how many answered.
function pinger(emu) {
  let stop = false, worst = 0, n = 0;
  const done = (async () => {
    while (!stop) {
      const t0 = process.hrtime.bigint();
      const r = await post(emu.port, '/ListTable', Buffer.alloc(0), { accessKeyId: emu.accessKeyId, accessKeySecret: emu.accessKeySecret, instance: emu.instance }, 600000);
      if (r.status !== 200) throw new Error(`ListTable: ${r.status}`);
      worst = Math.max(worst, Number(process.hrtime.bigint() - t0) / 1e6);
      n++;
      await new Promise((res) => setTimeout(res, 5));
    }
  })();
  return { async stop() { stop = true; await done; return { worst, n }; } };
}

try {
  let s = await timedStart(['--data-dir', dir, '--compact-bytes', big]);
  let r = await admin(s.emu, 'load', { table: 'bench', rows, value_bytes: 100, create: true });
  console.log(`# loaded ${rows} rows in ${r.ms.toFixed(0)} ms`);
  const env = { ...process.env, TABLESTORE_ACCESS_KEY_ID: s.emu.accessKeyId, TABLESTORE_ACCESS_KEY_SECRET: s.emu.accessKeySecret };
  for (const [name, type] of [['full', 'BaseAndStream'], ['cdc', 'Stream']])
    execFileSync(lunnel, ['tunnel', 'create', '--endpoint', s.emu.endpoint, '--instance', s.emu.instance, '--table', 'bench', '--tunnel', name, '--type', type], { env, stdio: 'ignore' });
  r = await admin(s.emu, 'load', { table: 'bench', rows: changes, value_bytes: 100 });
  console.log(`# rewrote ${changes} rows (changes) in ${r.ms.toFixed(0)} ms`);
  await kill(s.emu);

  s = await timedStart(['--data-dir', dir, '--compact-bytes', big]);
  if (s.st.tables[0].rows !== rows) throw new Error(`restored ${s.st.tables[0].rows} rows`);
  result('startup_log', s.ready, 'ms', `first answer (busy while restoring) at ${s.answer.toFixed(0)} ms, first after ready at ${s.first.toFixed(0)} ms; restore_ms ${s.st.durable.restore_ms.toFixed(0)}, CPU ${(s.st.durable.restore_cpu_ms ?? NaN).toFixed(0)} ms, ${s.st.durable.wal_records} log records`);
  await s.emu.stop();

  // compaction while serving: the next commit passes --compact-bytes
  s = await timedStart(['--data-dir', dir, '--compact-bytes', '1']);
  if (s.st.durable.compactions > 0) console.log(`# start-up compacted: ${s.st.durable.last_compact_ms.toFixed(0)} ms`);
  const before = s.st.durable.compactions;
  const p = pinger(s.emu);
  await new Promise((res) => setTimeout(res, 200));
  await admin(s.emu, 'load', { table: 'bench', rows: 1, value_bytes: 100 });
  let st;
  for (let i = 0; i < 600; i++) {
    st = (await admin(s.emu, 'stats', {})).durable;
    if (st.compactions > before && !st.compacting) break;
    await new Promise((res) => setTimeout(res, 50));
  }
  await new Promise((res) => setTimeout(res, 200));
  const g = await p.stop();
  result('compaction_gap', g.worst, 'ms', `longest wait for an answer during a compaction of ${st.last_compact_ms.toFixed(0)} ms (loop held ${(st.last_compact_block_ms ?? st.last_compact_ms).toFixed(0)} ms); ${g.n} pings`);
  await kill(s.emu);

  s = await timedStart(['--data-dir', dir, '--compact-bytes', big]);
  if (s.st.tables[0].rows !== rows) throw new Error(`restored ${s.st.tables[0].rows} rows`);
  result('startup_snapshot', s.ready, 'ms', `first answer (busy while restoring) at ${s.answer.toFixed(0)} ms, first after ready at ${s.first.toFixed(0)} ms; restore_ms ${s.st.durable.restore_ms.toFixed(0)}, CPU ${(s.st.durable.restore_cpu_ms ?? NaN).toFixed(0)} ms, ${s.st.durable.snapshot_records} snapshot records`);
  const x = await s.emu.stop();
  if (x.code !== 0) throw new Error(`emulator exit ${JSON.stringify(x)}`);
} finally {
  rmSync(path.dirname(dir), { recursive: true, force: true });
}
