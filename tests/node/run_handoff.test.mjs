// run_handoff.test.mjs: `lunnel run` when the service moves channels. The emulator forgets the
// client (expire_client): lunnel stops its channels, reconnects with a new client id and goes
// on; a second lunnel joins: the service sends CLOSING for some channels, the first one drains,
// checkpoints and reports CLOSE, the second takes them. No change goes missing (duplicates are
// allowed after the expiry: those batches could not be checkpointed); the client that took
// channels over from a drain sees each key's changes in order, without repeats.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  I, createTable, putRow, readRecords, startRun, tempDir, waitFor
} from '../harness/index.mjs';
import { emulatorForFile } from './lib/file_emulator.mjs';

const suite = emulatorForFile();

const seen = (dirs) => {
  const got = new Set();
  for (const d of dirs) for (const r of readRecords(d)) got.add(Number(r.cols[0][2]));
  return got;
};
const missing = (dirs, n) => {
  const got = seen(dirs);
  const m = [];
  for (let i = 0; i < n; i++) if (!got.has(i)) m.push(i);
  return m;
};

// Per-key order in one output directory: every write bumps `i`, so values of a key must grow.
function assertOrdered(dir) {
  const last = new Map();
  for (const r of readRecords(dir)) {
    const key = r.pk[0][2], v = Number(r.cols[0][2]);
    const prev = last.get(key);
    assert.ok(prev === undefined || v > prev, `key ${key}: ${v} after ${prev} in ${dir}`);
    last.set(key, v);
  }
}

test('client expiry and a second client joining: nothing missing', { timeout: 90000 }, async () => {
  const table = 'handoff', dirA = tempDir(), dirB = tempDir();
  await createTable(suite.c, table);
  const a = startRun(suite.emu, { table, tunnel: 'th', create: 'Stream', dir: dirA });
  await a.waitLog(/to=running/);
  let n = 0;
  const write = async (upto) => { for (; n < upto; n++) await putRow(suite.c, table, n % 10, 'h', { i: I(n) }); };

  await write(100);
  await waitFor(() => missing([dirA], 100).length === 0, 20000, 'first 100 changes');

  const { tunnels } = await suite.emu.admin('tunnels', {});
  const tunnel = tunnels.find((t) => t.tunnel_name === 'th') || tunnels[0];
  const ex = await suite.emu.admin('expire_client', { tunnel_id: tunnel.tunnel_id });
  assert.equal(ex.expired, 1);
  await write(200);
  await a.waitLog(/reconnecting/);
  await waitFor(() => missing([dirA], 200).length === 0, 30000, 'changes 100..199 after the reconnect');
  assert.match(a.stderr(), /connected .*client_id=(\S+)[\s\S]*connected .*client_id=/, 'a second Connect');

  const b = startRun(suite.emu, { table, tunnel: 'th', dir: dirB });
  await b.waitLog(/to=running/, 30000);
  assert.match(a.stderr(), /action=drain status=CLOSING/, 'the first client was asked to hand channels over');
  await write(300);
  await waitFor(() => missing([dirA, dirB], 300).length === 0, 30000, 'every change over both clients');
  const ra = await a.stop(), rb = await b.stop();
  assert.equal(ra.code, 0, a.stderr().slice(-2000));
  assert.equal(rb.code, 0, b.stderr().slice(-2000));
  assert.deepEqual(missing([dirA, dirB], 300), []);
  // the second client got changes written after it joined
  assert.ok([...seen([dirB])].some((v) => v >= 200));
  // B took over from A's drain checkpoint: no re-reads there, so strict per-key order
  assertOrdered(dirB);
});
