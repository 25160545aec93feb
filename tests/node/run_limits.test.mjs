// run_limits.test.mjs: a misbehaving script is contained (`lunnel run`, emulator, 4 channels,
// 2 Lua workers):
//   - a JIT-compiled loop allocating past --memory-limit on every channel's first call: the
//     batch fails with "memory limit", the worker's state is rebuilt (the script keeps the
//     memory in a module-level table), nothing crashes in 5 of 5 runs and every record
//     arrives afterwards (the BaseData tunnel finishes: exit 0);
//   - one channel stuck forever in compiled code: /readyz turns unready naming it, a
//     replacement worker takes the stuck worker's slot (with its other channel when that one
//     is still open) and every record outside the stuck batch arrives; past
//     --stuck-exit-timeout lunnel exits with status 6.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { after, before, test } from 'node:test';
import {
  startEmulator, I, createTable, putRow, sourceDir, startRun, tempDir, waitFor, withTimeout
} from '../harness/index.mjs';
import { allIds, idsScript, killAll, missingAndDuplicates, track } from './lib/ids.mjs';

const hogScript = path.join(sourceDir, 'tests/node/run_limits_hog.lua');
const N = 120;
let emu, c;
before(async () => {
  emu = await startEmulator({ args: ['--partitions', '4'] });
  c = emu.client();
  await createTable(c, 'lim');
  for (let id = 0; id < N; id++) await putRow(c, 'lim', id, 'p', { v: I(id) });
});
after(async () => { await killAll(); await emu?.stop(); });

function get(port, p) {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: p, timeout: 2000 }, (res) => {
      let body = '';
      res.on('data', (d) => { body += d; });
      res.on('end', () => resolve({ status: res.statusCode, body }));
    });
    req.on('error', (e) => resolve({ status: 0, body: String(e) }));
    req.on('timeout', () => req.destroy());
  });
}

test('a JIT loop past --memory-limit on every channel: no crash in 5 of 5 runs, every record delivered', { timeout: 320000 }, async () => {
  for (let run = 0; run < 5; run++) {
    const dir = tempDir();
    const r = startRun(emu, { table: 'lim', tunnel: `hog${run}`, create: 'BaseData', dir, script: hogScript,
      custom: { base: idsScript, hog: true },
      args: ['--exit-when-done', '--memory-limit', String(64 * 1024 * 1024), '--workers', '2'] });
    track(r);
    const res = await withTimeout(r.exited, 60000, `run ${run} exits when done`);
    if (res instanceof Error) await r.stop('SIGKILL');
    const err = r.stderr();
    assert.equal(res.signal, null, `run ${run}: killed by ${res.signal}\n${err.slice(-3000)}`);
    assert.equal(res.code, 0, `run ${run}\n${err.slice(-3000)}`);
    assert.match(err, /hog: filling memory/, 'the hog ran');
    assert.match(err, /process\(\) failed .*memory limit of 67108864 bytes reached/, 'the batch failed on the limit');
    assert.match(err, /worker state rebuilt/, 'the state holding the memory was replaced');
    const { missing } = missingAndDuplicates(allIds([dir]), N);
    assert.deepEqual(missing, [], `run ${run}: every record arrives`);
  }
});

test('a stuck process(): /readyz unready, the other channels go on, exit 6 past --stuck-exit-timeout', { timeout: 90000 }, async () => {
  const dir = tempDir();
  const portFile = path.join(dir, 'metrics.port');
  const r = startRun(emu, { table: 'lim', tunnel: 'stuck', create: 'BaseData', dir, script: hogScript,
    custom: { base: idsScript, stuck_channel: 'BaseData_p1' },
    args: ['--workers', '2', '--process-timeout', '1', '--stuck-exit-timeout', '12',
      '--metrics-listen', '127.0.0.1:0', '--metrics-port-file', portFile] });
  track(r);
  try {
    const port = Number(await waitFor(() => fs.existsSync(portFile) && fs.readFileSync(portFile, 'utf8').trim(), 15000, 'metrics port'));
    const stuckFile = path.join(dir, 'stuck.txt');
    await waitFor(() => fs.existsSync(stuckFile), 15000, 'the stuck call starts');
    const ready = await waitFor(async () => {
      const g = await get(port, '/readyz');
      return g.status === 503 && /stuck on channel BaseData_p1/.test(g.body) && g;
    }, 15000, '/readyz unready naming the stuck channel');
    assert.match(ready.body, /not ready: script call stuck on channel BaseData_p1/);
    const stuckIds = new Set(fs.readFileSync(stuckFile, 'utf8').trim().split('\n').map(Number));
    assert.ok(stuckIds.size > 0 && stuckIds.size < N, `the stuck batch holds part of the table: ${stuckIds.size}`);
    // the loop thread starts the replacement when it handles the watchdog's report (the
    // stuck worker's other channel may have finished by then: moved 0 or 1); the metrics are
    // read right then, while the process lives (it exits --stuck-exit-timeout after the stuck
    // call began, however slow a loaded machine made the waits)
    await r.waitLog(/replacement worker started .*stuck_channel=BaseData_p1 channels_moved=[01]\b/, 10000);
    const m = await get(port, '/metrics');
    assert.match(m.body, /^lunnel_process_stuck_calls 1$/m);
    assert.match(m.body, /^lunnel_lua_worker_replacements_total 1$/m);
    // every record outside the stuck batch arrives, the stuck worker's other channel included
    const expected = [...Array(N).keys()].filter((id) => !stuckIds.has(id));
    await waitFor(() => {
      const got = new Set(allIds([dir]));
      return expected.every((id) => got.has(id));
    }, 20000, 'every record outside the stuck batch');
    assert.ok(allIds([dir]).every((id) => !stuckIds.has(id)), 'nothing of the stuck batch was handled');
    const res = await withTimeout(r.exited, 30000, 'exit past --stuck-exit-timeout');
    assert.ok(!(res instanceof Error), String(res));
    assert.equal(res.code, 6, r.stderr().slice(-3000));
    assert.match(r.stderr(), /^lunnel run: process\(\) on channel BaseData_p1 has run for \d+ s, past --stuck-exit-timeout \(exit 6\)$/m);
  } finally {
    await r.stop('SIGKILL');
  }
});
