// bench/pacing/measure.mjs: what one persistent failure costs in requests and log lines over
// WINDOW_S seconds (default 8): `lunnel run` of BUILD_DIR on a 2-partition table of 40 rows
// against a fresh lunnel-emulator, --heartbeat-interval 1, with either a script whose open()
// always raises (mode "open", a BaseData tunnel) or every ReadRecords refused with
// OTSParameterInvalid (mode "readrecords", a Stream tunnel). Prints one JSON line: requests
// per path (the emulator's tunnel_stats), the script's calls, stderr lines.
// Usage: LUNNEL_BUILD_DIR=build node bench/pacing/measure.mjs open|readrecords
import { startEmulator } from '../../tests/harness/emulator.mjs';
import { failScript, lineCount, requestCounts, scriptCalls } from '../../tests/node/lib/pacing.mjs';
import { I, createTable, putRow, startRun, tempDir } from '../../tests/harness/index.mjs';

const mode = process.argv[2] || 'open';
const windowS = Number(process.env.WINDOW_S || 8);
const emu = await startEmulator({ args: ['--partitions', '2'] });
try {
  const c = emu.client();
  await createTable(c, 'm');
  for (let id = 0; id < 40; id++) await putRow(c, 'm', id, 'p', { v: I(id) });
  if (mode === 'readrecords')
    await emu.admin('faults', { path: '/tunnel/readrecords', code: 'OTSParameterInvalid', status: 400, count: -1 });
  await requestCounts(emu, true);
  const dir = tempDir();
  const run = startRun(emu, { table: 'm', tunnel: 't', create: mode === 'open' ? 'BaseData' : 'Stream', dir,
    script: failScript, custom: mode === 'open' ? { fail_open: true } : {},
    args: ['--heartbeat-interval', '1', '--heartbeat-timeout', '10'] });
  await new Promise((r) => setTimeout(r, windowS * 1000));
  const counts = await requestCounts(emu);
  const calls = scriptCalls(dir);
  const lines = lineCount(run.stderr());
  await run.stop('SIGKILL');
  console.log(JSON.stringify({ mode, window_s: windowS, build: process.env.LUNNEL_BUILD_DIR, requests: counts,
    script_calls: { open: calls.open, process: calls.process, shutdown: calls.shutdown }, log_lines: lines }));
} finally {
  await emu.stop();
}
process.exit(0);
