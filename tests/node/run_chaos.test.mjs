// run_chaos.test.mjs: a script failing at random in open(), process() and shutdown() (seeded:
// the seed is printed; LUNNEL_TEST_SEED replays one) while rows are written, for
// LUNNEL_CHAOS_SECONDS (40 s by default, a minute at most), then a clean script: every row is
// delivered, nothing was checkpointed unhandled (the clean run re-delivers exactly what the
// chaos run did not handle), and the requests stay within README's "Failures and pacing"
// bound. CPU stays low: ~10 writes a second and lunnel's own paced traffic.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { I, createTable, putRow, startRun, tempDir, waitFor, announceSeed, seed } from '../harness/index.mjs';
import { emulatorForFile } from './lib/file_emulator.mjs';
import { allIds, killAll, missingAndDuplicates, track } from './lib/ids.mjs';
import { REQUESTS_PER_STEP, failScript, requestCounts, scriptCalls } from './lib/pacing.mjs';

const CHANNELS = 2;
const SECONDS = Math.min(60, Number(process.env.LUNNEL_CHAOS_SECONDS || 40));
const SEED = seed; // the harness's: printed, LUNNEL_TEST_SEED replays it

const suite = emulatorForFile({ args: ['--partitions', String(CHANNELS)] }, { cleanup: killAll });

test(`chaos: random failures in open/process/shutdown for ${SECONDS} s, then a clean script`, { timeout: (SECONDS + 90) * 1000 }, async (t) => {
  t.diagnostic(`chaos seed ${announceSeed()} (LUNNEL_TEST_SEED=${SEED} replays it)`);
  const table = 'chaos', dir = tempDir(), dir2 = tempDir();
  await createTable(suite.c, table);
  const run = track(startRun(suite.emu, { table, tunnel: 't', create: 'Stream', dir, script: failScript,
    custom: { seed: SEED, fail_first: true, fail_open: 0.3, fail_process: 0.3, fail_shutdown: 0.3 },
    args: ['--max-retries', '1', '--heartbeat-interval', '0.5', '--heartbeat-timeout', '10'] }));
  await run.waitLog(/channel update/);
  await requestCounts(suite.emu, true);
  const t0 = Date.now();
  let n = 0;
  while (Date.now() - t0 < SECONDS * 1000) {
    await putRow(suite.c, table, n, 'p', { v: I(n) });
    n++;
    await new Promise((r) => setTimeout(r, 100));
  }
  const window = (Date.now() - t0) / 1000;
  const counts = await requestCounts(suite.emu);
  const calls = scriptCalls(dir);
  const r = await run.stop();
  const log = run.stderr();
  assert.equal(r.code, 0, log.slice(-3000));
  t.diagnostic(`chaos: ${n} rows, ${JSON.stringify(counts)}, script calls ${JSON.stringify({ open: calls.open, process: calls.process, shutdown: calls.shutdown })}`);
  // the failures really happened, in all three places (fail_first makes sure of it)
  assert.match(log, /open\(ctx\): .*fail_open/);
  assert.match(log, /fail_process/);
  assert.match(log, /shutdown\(ctx\)(: | failed ).*fail_shutdown/);
  // paced: a channel fails at most once per backoff step (>= 1 s apart)
  const failures = {};
  for (const m of log.matchAll(/channel failed, reopening after a backoff channel=(\S+)/g)) failures[m[1]] = (failures[m[1]] || 0) + 1;
  for (const [ch, k] of Object.entries(failures)) assert.ok(k <= window + 1, `${ch} failed ${k} times in ${window} s`);
  const channelCalls = (counts['/tunnel/getcheckpoint'] || 0) + (counts['/tunnel/readrecords'] || 0) + (counts['/tunnel/checkpoint'] || 0);
  // healthy polling (idle backoff <= --max-backoff 0.2 s: ~5 reads/s, plus checkpoints every
  // 0.2 s) and at most REQUESTS_PER_STEP per failure step, per channel
  assert.ok(channelCalls <= CHANNELS * window * (10 + 5) + Object.values(failures).reduce((a, b) => a + b, 0) * REQUESTS_PER_STEP,
    `${JSON.stringify(counts)} in ${window} s`);
  assert.ok((counts['/tunnel/heartbeat'] || 0) <= window / 0.5 + 2 + Object.values(failures).reduce((a, b) => a + b, 0), JSON.stringify(counts));

  // a clean script: what the chaos run did not handle arrives; what it handled was
  // checkpointed at most a checkpoint interval late, never skipped
  const got1 = allIds([dir]);
  const run2 = track(startRun(suite.emu, { table, tunnel: 't', dir: dir2, script: failScript }));
  await waitFor(() => missingAndDuplicates([...got1, ...allIds([dir2])], n).missing.length === 0, 60000,
    `every one of ${n} rows (seed ${SEED})`);
  const r2 = await run2.stop();
  assert.equal(r2.code, 0, run2.stderr().slice(-3000));
  const { missing, extra } = missingAndDuplicates([...got1, ...allIds([dir2])], n);
  assert.deepEqual(missing, [], `seed ${SEED}`);
  assert.equal(extra, 0);
});
