// run_policy.test.mjs: `lunnel run --on-error` with a poison record, and the exit statuses of
// the daemon's fatal cases, end to end against lunnel-emulator:
//   retry: the failing batch is re-run (same batch, backoff) and then succeeds: every row once,
//          in order; skip: the poison batch lands in --dead-letter (JSON Lines, exact records +
//          error), the rest arrives; stop: exit 1 with one clear line, the checkpoint covers what
//          was handled (a restart re-reads from the poison batch, not before);
//   expired tunnel -> 4, bad credentials -> 3, missing tunnel -> 5, unknown tunnel id at
//   Connect -> the OTSParameterInvalid status, unreachable endpoint -> 1 after
//   --connect-retry-window; each with one "lunnel run: ..." line naming the cause.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import {
  B, I, createTable, putRow, startRun, tempDir, waitFor, withTimeout
} from '../harness/index.mjs';
import { emulatorForFile } from './lib/file_emulator.mjs';
import { allIds, countIds, idsScript, killAll, missingAndDuplicates, readIds, track } from './lib/ids.mjs';

const suite = emulatorForFile({ args: ['--partitions', '2'] }, { cleanup: killAll });

const ids = (script = idsScript) => ({ script });

// Writes rows lo..hi-1 (column v = id); `poison` ids also get a column `poison`.
async function writeRows(table, lo, hi, poison = []) {
  for (let id = lo; id < hi; id++) {
    const cols = { v: I(id) };
    if (poison.includes(id)) cols.poison = B(true);
    await putRow(suite.c, table, id, 'p', cols);
  }
}

function assertOrdered(dir) {
  for (const [ch, segs] of Object.entries(readIds(dir)))
    for (const s of segs)
      for (let i = 1; i < s.length; i++) assert.ok(s[i].id > s[i - 1].id, `${ch}: ${s[i - 1].id} then ${s[i].id}`);
}

test('--on-error retry: a transient failure is retried on the same batch; all rows once, in order', { timeout: 60000 }, async () => {
  const table = 'pretry', dir = tempDir();
  await createTable(suite.c, table);
  const run = startRun(suite.emu, { table, tunnel: 't', create: 'Stream', dir, custom: { poison_fail: 2 }, ...ids(),
    args: ['--max-retries', '3'] });
  track(run);
  await run.waitLog(/to=running/);
  await writeRows(table, 0, 30, [12]);
  await waitFor(() => countIds(dir) >= 30, 30000, '30 rows');
  const r = await run.stop();
  assert.equal(r.code, 0, run.stderr().slice(-3000));
  const { missing, dups } = missingAndDuplicates(allIds([dir]), 30);
  assert.deepEqual(missing, []);
  assert.deepEqual(dups, [], 'a retried batch is not delivered twice');
  assertOrdered(dir);
  const fails = run.stderr().match(/process\(\) failed.*policy=retry/g) || [];
  assert.equal(fails.length, 2, run.stderr().slice(-3000));
  assert.doesNotMatch(run.stderr(), /retries exhausted/);
});

test('--on-error retry: retries exhausted close the channel; it is re-read from its checkpoint', { timeout: 60000 }, async () => {
  const table = 'pexh', dir = tempDir();
  await createTable(suite.c, table);
  // fails 3 times per channel object: 1 + 1 retry, channel closed, re-read, fails once more, ok
  const run = startRun(suite.emu, { table, tunnel: 't', create: 'Stream', dir, custom: { poison_fail: 3 }, ...ids(),
    args: ['--max-retries', '1'] });
  track(run);
  await run.waitLog(/to=running/);
  await writeRows(table, 0, 20, [7]);
  await waitFor(() => countIds(dir) >= 20, 30000, '20 rows');
  const r = await run.stop();
  assert.equal(r.code, 0, run.stderr().slice(-3000));
  assert.match(run.stderr(), /retries exhausted, closing the channel/);
  const { missing } = missingAndDuplicates(allIds([dir]), 20);
  assert.deepEqual(missing, []);
  assertOrdered(dir);
});

test('--on-error skip: the poison batch goes to the dead-letter file, durably, with its error', { timeout: 60000 }, async () => {
  const table = 'pskip', dir = tempDir();
  const dl = path.join(dir, 'dead.jsonl');
  await createTable(suite.c, table);
  const run = startRun(suite.emu, { table, tunnel: 't', create: 'Stream', dir, ...ids(),
    args: ['--on-error', 'skip', '--dead-letter', dl] });
  track(run);
  await run.waitLog(/to=running/);
  await writeRows(table, 0, 30, [5, 21]);
  await waitFor(() => {
    if (!fs.existsSync(dl)) return false; // created (empty) at start-up, before Connect
    const dead = fs.readFileSync(dl, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
    return countIds(dir) + dead.length >= 30;
  }, 30000, 'rows + dead letters = 30');
  const r = await run.stop();
  assert.equal(r.code, 0, run.stderr().slice(-3000));
  const dead = fs.readFileSync(dl, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
  const deadIds = dead.map((d) => Number(d.record.pk.id));
  assert.ok(deadIds.includes(5) && deadIds.includes(21), JSON.stringify(deadIds));
  for (const d of dead) {
    assert.match(d.error, /poison record/);
    assert.equal(typeof d.channel_id, 'string');
    assert.equal(typeof d.batch_token, 'string');
    assert.ok(d.count >= 1 && d.index < d.count);
    assert.ok(d.record.action === 'PUT' && d.record.cols.v !== undefined, JSON.stringify(d));
  }
  const got = allIds([dir]);
  const { missing, dups } = missingAndDuplicates([...got, ...deadIds], 30);
  assert.deepEqual(missing, []);
  assert.deepEqual(dups, []);
  assert.match(run.stderr(), /batch written to the dead-letter file/);
});

test('--on-error stop: exit 1 with one line; the checkpoint covers what was handled', { timeout: 60000 }, async () => {
  const table = 'pstop', dir1 = tempDir(), dir2 = tempDir();
  await createTable(suite.c, table);
  const run1 = startRun(suite.emu, { table, tunnel: 't', create: 'Stream', dir: dir1, ...ids(), args: ['--on-error', 'stop'] });
  track(run1);
  await run1.waitLog(/to=running/);
  await writeRows(table, 0, 10);
  await waitFor(() => countIds(dir1) >= 10, 30000, 'first 10 rows');
  await writeRows(table, 10, 20, [10]);
  const r1 = await withTimeout(run1.exited, 30000, 'exit after the poison');
  if (r1 instanceof Error) await run1.stop('SIGKILL');
  assert.equal(r1.code, 1, run1.stderr().slice(-3000));
  const last = run1.stderr().trim().split('\n').pop();
  assert.match(last, /^lunnel run: --on-error stop: process\(\) failed on channel .*poison record 10.*\(exit 1\)$/);
  // restart with the poison defused: the poison batch and what follows, never what was handled
  const run2 = startRun(suite.emu, { table, tunnel: 't', dir: dir2, custom: { poison_fail: 0 }, ...ids() });
  track(run2);
  await waitFor(() => allIds([dir2]).includes(10), 30000, 'the poison row re-read');
  await waitFor(() => missingAndDuplicates(allIds([dir1, dir2]), 20).missing.length === 0, 30000, 'all rows');
  assert.equal((await run2.stop()).code, 0, run2.stderr().slice(-3000));
  const again = allIds([dir2]).filter((id) => id < 10);
  assert.deepEqual(again, [], 'rows handled before the stop were checkpointed');
});

async function expectExit(args, code, lineRe, what, extra = {}) {
  const dir = tempDir();
  const run = startRun(suite.emu, { dir, ...ids(), ...extra, args });
  track(run);
  const r = await withTimeout(run.exited, 30000, what);
  if (r instanceof Error) await run.stop('SIGKILL');
  assert.equal(r.code, code, `${what}: ${JSON.stringify(r)}\n${run.stderr().slice(-3000)}`);
  const lines = run.stderr().trim().split('\n').filter((l) => l.startsWith('lunnel run:'));
  assert.equal(lines.length, 1, `${what}: one clear line, got:\n${run.stderr().slice(-3000)}`);
  assert.match(lines[0], lineRe, what);
}

test('fatal cases: expired tunnel 4, bad credentials 3, missing tunnel 5, bad tunnel id, unreachable 1', { timeout: 90000 }, async () => {
  const table = 'pfatal';
  await createTable(suite.c, table);
  await writeRows(table, 0, 3);
  // a tunnel, then expired by the emulator (stream data past retention)
  const dir = tempDir();
  const run = startRun(suite.emu, { table, tunnel: 'exp', create: 'Stream', dir, ...ids() });
  track(run);
  await run.waitLog(/to=running/);
  await suite.emu.admin('expire_tunnel', { table, tunnel_name: 'exp' });
  const r = await withTimeout(run.exited, 30000, 'exit on an expired tunnel');
  if (r instanceof Error) await run.stop('SIGKILL');
  assert.equal(r.code, 4, run.stderr().slice(-3000));
  assert.match(run.stderr(), /lunnel run: .*OTSTunnelExpired.*\(exit 4\)/);
  // a new start on the expired tunnel: same status at once
  await expectExit([], 4, /OTSTunnelExpired/, 'start on an expired tunnel', { table, tunnel: 'exp' });
  // bad credentials: OTSAuthFailed (refresh cannot help) -> 3
  const bad = { ...suite.emu, accessKeySecret: 'wrong-secret' };
  const dir2 = tempDir();
  const run2 = startRun(bad, { table, tunnel: 'exp', dir: dir2, ...ids() });
  track(run2);
  const r2 = await withTimeout(run2.exited, 30000, 'bad credentials');
  assert.equal(r2.code, 3, run2.stderr().slice(-3000));
  assert.match(run2.stderr(), /lunnel run: .*OTSAuthFailed/);
  // the same at Connect (--tunnel-id skips DescribeTunnel): one line from the worker, exit 3
  const expId = (await suite.emu.admin('tunnels', {})).tunnels.find((t) => t.tunnel_name === 'exp').tunnel_id;
  const dir2b = tempDir();
  const run2b = startRun(bad, { table, tunnel: 'exp', dir: dir2b, ...ids(), args: ['--tunnel-id', expId] });
  track(run2b);
  const r2b = await withTimeout(run2b.exited, 30000, 'bad credentials at connect');
  if (r2b instanceof Error) await run2b.stop('SIGKILL');
  assert.equal(r2b.code, 3, run2b.stderr().slice(-3000));
  assert.match(run2b.stderr(), /lunnel run: connect: .*OTSAuthFailed.*\(exit 3\)/);
  // missing tunnel (no --create) -> 5
  await expectExit([], 5, /not exist|OTSTunnelNotExist|OTSObjectNotExist|OTSParameterInvalid/i, 'missing tunnel',
    { table, tunnel: 'nope' });
  // a tunnel id nobody knows, at Connect -> the OTSParameterInvalid status, one line
  await expectExit(['--tunnel-id', '00000000-0000-0000-0000-000000000000'], 5, /connect: .*OTSParameterInvalid/,
    'unknown tunnel id', { table, tunnel: 'nope' });
  // nothing listens: bounded connect retries, then 1 with the reason
  const dead = { ...suite.emu, endpoint: 'http://127.0.0.1:9' };
  const dir3 = tempDir();
  const run3 = startRun(dead, { table, tunnel: 'x', dir: dir3, ...ids(),
    args: ['--tunnel-id', 'abc', '--connect-retry-window', '1s', '--retry-window', '0.3s', '--reconnect-delay-max', '0.1'] });
  track(run3);
  const r3 = await withTimeout(run3.exited, 30000, 'unreachable endpoint');
  if (r3 instanceof Error) await run3.stop('SIGKILL');
  assert.equal(r3.code, 1, run3.stderr().slice(-3000));
  assert.match(run3.stderr(), /lunnel run: cannot connect for [0-9.]+ s \(--connect-retry-window\): .*\(exit 1\)/);
});
