// replay_files.test.mjs: `lunnel replay` reads what `lunnel run` writes. A run with a poison
// record (--on-error skip) writes a dead-letter file and, with --capture, every ReadRecords
// response it handed to the script. Then:
//   - the dead-letter file replayed through the original script fails the same way (exit 1,
//     the script's error), and through a fixed script delivers exactly the dead-lettered
//     records, in order;
//   - the capture file replayed through the fixed script delivers every row exactly once;
//   - --capture-max-bytes bounds the file (the run goes on, one log line).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import {
  B, I, createTable, putRow, runLunnelSync, startRun, tempDir, waitFor
} from '../harness/index.mjs';
import { emulatorForFile } from './lib/file_emulator.mjs';
import { allIds, countIds, idsScript, killAll, readIds, track } from './lib/ids.mjs';

const suite = emulatorForFile({ args: ['--partitions', '2'] }, { cleanup: killAll });

function replay(args) {
  const r = runLunnelSync(['replay', ...args]);
  return { code: r.code, out: r.stdout, err: r.stderr };
}

test('dead-letter and --capture files replay through a script', { timeout: 60000 }, async () => {
  const table = 'replayed', dir = tempDir(), dl = path.join(dir, 'dead.jsonl'), cap = path.join(dir, 'run.capture');
  await createTable(suite.c, table);
  const run = track(startRun(suite.emu, { table, tunnel: 't', create: 'Stream', dir, script: idsScript,
    args: ['--on-error', 'skip', '--dead-letter', dl, '--capture', cap] }));
  await run.waitLog(/to=running/);
  for (let id = 0; id < 30; id++) {
    const cols = { v: I(id) };
    if (id === 5 || id === 21) cols.poison = B(true);
    await putRow(suite.c, table, id, 'p', cols);
  }
  await waitFor(() => fs.existsSync(dl) && countIds(dir) + fs.readFileSync(dl, 'utf8').split('\n').filter(Boolean).length >= 30,
    30000, 'rows + dead letters = 30');
  assert.equal((await run.stop()).code, 0, run.stderr().slice(-3000));
  const dead = fs.readFileSync(dl, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
  const deadIds = dead.map((d) => Number(d.record.pk.id));
  assert.ok(deadIds.includes(5) && deadIds.includes(21), JSON.stringify(deadIds));

  // the original script fails on the dead letters again, naming the error
  const out0 = tempDir();
  const again = replay(['--script', idsScript, '--custom', JSON.stringify({ dir: out0 }), '--quiet', dl]);
  assert.equal(again.code, 1, again.err + again.out + fs.readFileSync(dl, "utf8").slice(0, 500));
  assert.match(again.err, /poison record/);

  // a fixed script (poison tolerated) gets exactly the dead-lettered records, in order
  const out1 = tempDir();
  const fixed = replay(['--script', idsScript, '--custom', JSON.stringify({ dir: out1, poison_fail: 0 }), dl]);
  assert.equal(fixed.code, 0, fixed.err + fixed.out);
  assert.match(fixed.out, new RegExp(`records=${dead.length} failed=0`));
  assert.deepEqual(allIds([out1]), deadIds);
  // the values came through typed: column v of each record is its id
  for (const segs of Object.values(readIds(out1))) for (const s of segs) for (const r of s) assert.equal(r.v, String(r.id));

  // the capture holds every batch the run processed: all 30 rows, each once
  const out2 = tempDir();
  const fromCap = replay(['--script', idsScript, '--custom', JSON.stringify({ dir: out2, poison_fail: 0 }), cap]);
  assert.equal(fromCap.code, 0, fromCap.err + fromCap.out);
  const ids = allIds([out2]).sort((a, b) => a - b);
  assert.deepEqual(ids, Array.from({ length: 30 }, (_, i) => i));
});

test('--capture-max-bytes bounds the capture file; the run goes on', { timeout: 60000 }, async () => {
  const table = 'capped', dir = tempDir(), cap = path.join(dir, 'small.capture');
  await createTable(suite.c, table);
  const run = track(startRun(suite.emu, { table, tunnel: 't', create: 'Stream', dir, script: idsScript,
    args: ['--capture', cap, '--capture-max-bytes', '2000'] }));
  await run.waitLog(/to=running/);
  // small batches first (one row each), then a burst that cannot fit
  for (let id = 0; id < 3; id++) {
    await putRow(suite.c, table, id, 'p', { v: I(id) });
    await waitFor(() => countIds(dir) >= id + 1, 30000, `row ${id}`);
  }
  for (let id = 3; id < 40; id++) await putRow(suite.c, table, id, 'p', { v: I(id), pad: ['STRING', 'x'.repeat(100)] });
  await waitFor(() => countIds(dir) >= 40, 30000, 'every row processed');
  assert.equal((await run.stop()).code, 0, run.stderr().slice(-3000));
  assert.ok(fs.statSync(cap).size <= 2000, `capture is ${fs.statSync(cap).size} bytes`);
  assert.match(run.stderr(), /capture file reached --capture-max-bytes/);
  assert.equal((run.stderr().match(/capture file reached/g) || []).length, 1, 'logged once');
  // what was captured still replays
  const out = tempDir();
  const r = replay(['--script', idsScript, '--custom', JSON.stringify({ dir: out }), cap]);
  assert.equal(r.code, 0, r.err + r.out);
  const got = allIds([out]);
  assert.ok(got.length >= 3 && got.length < 40, JSON.stringify(got));
});
