// bench.mjs: start-up time of lunnel-emulator --data-dir with ROWS stored rows (driven by
// run.sh). Loads the rows with the admin `load` action (one request: one commit), kills the
// emulator with SIGKILL, and times restarts: replaying the write-ahead log alone, the
// start-up that compacts it (snapshot written), and restoring from the snapshot. Prints one
// RESULT line per figure. Times: spawn to the ready line (wall clock) and the emulator's own
// restore_ms (/_emulator/stats).
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { startEmulator, tablestore } from '../../tests/harness/emulator.mjs';

const rows = Number(process.env.ROWS || 1000000);
const vb = Number(process.env.VALUE_BYTES || 100);
const dir = mkdtempSync(path.join(tmpdir(), 'lunnel-durable-bench-'));
const result = (name, v, unit, note = '') => console.log(`RESULT ${name} ${typeof v === 'number' ? v.toFixed(1) : v} ${unit}${note ? ` (${note})` : ''}`);
const sizes = () => readdirSync(dir).filter((f) => f !== 'lock')
  .map((f) => `${f}=${(statSync(path.join(dir, f)).size / 1048576).toFixed(1)}MiB`).join(' ');

async function timedStart(args) {
  const t0 = process.hrtime.bigint();
  const emu = await startEmulator({ args, readyTimeoutMs: 600000 });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  const st = await emu.admin('stats', {});
  return { emu, ms, durable: st.durable, tables: st.tables };
}

async function kill(emu) {
  emu.child.kill('SIGKILL');
  await emu.exited;
}

// PutRow rate through the official SDK (tests/node/setup.sh installs it; skipped without):
// `conns` writers in parallel, `n` rows each.
async function putRate(args, label, conns = 1, n = 1000) {
  let TS;
  try { TS = tablestore(); } catch { console.log(`# ${label}: skipped (no tablestore SDK in tests/node)`); return; }
  const emu = await startEmulator({ args });
  const c = emu.client();
  const call = (fn, p) => new Promise((res, rej) => c[fn](p, (e, d) => (e ? rej(e) : res(d))));
  await call('createTable', {
    tableMeta: { tableName: 'p', primaryKey: [{ name: 'id', type: 'INTEGER' }] },
    reservedThroughput: { capacityUnit: { read: 0, write: 0 } }, tableOptions: { timeToLive: -1, maxVersions: 1 },
  });
  const t0 = process.hrtime.bigint();
  await Promise.all([...Array(conns).keys()].map(async (w) => {
    for (let i = 0; i < n; i++) {
      await call('putRow', {
        tableName: 'p', condition: new TS.Condition(TS.RowExistenceExpectation.IGNORE, null),
        primaryKey: [{ id: TS.Long.fromNumber(w * n + i) }], attributeColumns: [{ v: 'x'.repeat(100) }],
      });
    }
  }));
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  const st = await emu.admin('stats', {});
  result(`putrow_${label}`, (conns * n) / s, 'rows/s', `${conns} writer(s) x ${n}${st.durable ? `, ${st.durable.fsyncs} fsyncs` : ''}`);
  await emu.stop();
  if (args.includes('--data-dir')) rmSync(args[args.indexOf('--data-dir') + 1], { recursive: true, force: true });
}

try {
  await putRate([], 'warmup', 1, 300); // node's JIT, so the first figure is not penalised
  for (const conns of [1, 8]) {
    await putRate([], 'in_memory', conns);
    await putRate(['--data-dir', mkdtempSync(path.join(tmpdir(), 'lunnel-durable-put-'))], 'fsync_always', conns);
    await putRate(['--data-dir', mkdtempSync(path.join(tmpdir(), 'lunnel-durable-put-')), '--fsync', 'batch'], 'fsync_batch', conns);
  }
  if (process.env.PUT_ONLY) process.exit(0);
  const big = String(2 ** 36); // 64 GiB: no compaction while loading
  // In memory, for the load-cost comparison.
  let { emu } = await timedStart([]);
  let r = await emu.admin('load', { table: 'bench', rows, value_bytes: vb });
  result('load_in_memory', r.ms, 'ms', `${rows} rows, ${vb}-byte values`);
  await emu.stop();

  ({ emu } = await timedStart(['--data-dir', dir, '--compact-bytes', big]));
  const t0 = process.hrtime.bigint();
  r = await emu.admin('load', { table: 'bench', rows, value_bytes: vb });
  const acked = Number(process.hrtime.bigint() - t0) / 1e6;
  result('load_durable', r.ms, 'ms', `store work; ${acked.toFixed(0)} ms until acknowledged (journal written + fsync)`);
  await kill(emu);
  console.log(`# files after load: ${sizes()}`);

  let s = await timedStart(['--data-dir', dir, '--compact-bytes', big]);
  result('startup_wal_replay', s.ms, 'ms', `restore_ms ${s.durable.restore_ms.toFixed(0)}, ${s.durable.wal_records} log records`);
  if (s.tables[0].rows !== rows) throw new Error(`restored ${s.tables[0].rows} rows, expected ${rows}`);
  await kill(s.emu);

  s = await timedStart(['--data-dir', dir, '--compact-bytes', '1048576']); // compacts at start-up
  result('startup_with_compaction', s.ms, 'ms', `replay + snapshot written in ${s.durable.last_compact_ms.toFixed(0)} ms`);
  await kill(s.emu);
  console.log(`# files after compaction: ${sizes()}`);

  s = await timedStart(['--data-dir', dir]);
  result('startup_snapshot', s.ms, 'ms', `restore_ms ${s.durable.restore_ms.toFixed(0)}, ${s.durable.snapshot_records} snapshot records`);
  if (s.tables[0].rows !== rows) throw new Error(`restored ${s.tables[0].rows} rows, expected ${rows}`);
  const st = await s.emu.stop();
  if (st.code !== 0) throw new Error(`emulator exit ${JSON.stringify(st)}`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
