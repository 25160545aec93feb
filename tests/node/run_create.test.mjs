// run_create.test.mjs: `lunnel run --create TYPE` decides from ListTunnel (a name match on the
// table) whether the tunnel exists, never from the wording of an error:
// - absent: it lists, creates, consumes;
// - present: it lists and consumes the existing tunnel without a CreateTunnel;
// - created concurrently: two processes started together both list "absent" (CreateTunnel is
//   reply is delayed by an emulator fault so that both lists are answered before a create), one create wins, the other
//   is refused, lists again and consumes the same tunnel: one tunnel, two clients, every row
//   delivered.
// Request counts come from the emulator's admin `stats`.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { readRecords, runLunnelSync, startEmulator, startRun, tempDir, waitFor } from '../harness/index.mjs';
import { tunnelState, track, killAll } from './lib/ids.mjs';

after(killAll);

async function calls(emu, path) {
  const s = await emu.admin('stats');
  return s.requests[path] ? s.requests[path].requests : 0;
}

async function tunnelsNamed(emu, name) {
  return (await emu.admin('tunnels')).tunnels.filter((t) => t.tunnel_name === name);
}

function delivered(dirs, n) {
  const ids = new Set();
  for (const d of dirs) for (const r of readRecords(d)) ids.add(r.pk[0][2]);
  for (let i = 0; i < n; i++) if (!ids.has(String(i))) return false;
  return true;
}

test('--create on an absent tunnel lists, creates and consumes it', async () => {
  const emu = await startEmulator({ args: ['--partitions', '2'] });
  const dir = tempDir('lunnel-create-');
  try {
    await emu.admin('load', { table: 'orders', rows: 200, create: true });
    const run = track(startRun(emu, { table: 'orders', tunnel: 'cdc', create: 'BaseData', dir, args: ['--exit-when-done'] }));
    const r = await run.exited;
    assert.equal(r.code, 0, run.stderr());
    assert.match(run.stderr(), /tunnel created/);
    assert.ok(await calls(emu, '/tunnel/list') >= 1, 'no ListTunnel');
    assert.equal(await calls(emu, '/tunnel/create'), 1);
    assert.equal((await tunnelsNamed(emu, 'cdc')).length, 1);
    assert.ok(delivered([dir], 200));
  } finally {
    await emu.stop();
  }
});

test('--create on a present tunnel uses it without CreateTunnel', async () => {
  const emu = await startEmulator({ args: ['--partitions', '2'] });
  const dir = tempDir('lunnel-create-');
  try {
    await emu.admin('load', { table: 'orders', rows: 200, create: true });
    const made = runLunnelSync(['tunnel', 'create', '--endpoint', emu.endpoint, '--instance', emu.instance,
      '--table', 'orders', '--tunnel', 'cdc', '--type', 'BaseData', '--json'], { emu });
    assert.equal(made.code, 0, made.stderr);
    const before = await calls(emu, '/tunnel/create');
    // another table's tunnel of the same name must not be taken for it
    await emu.admin('load', { table: 'other', rows: 1, create: true });
    const run = track(startRun(emu, { table: 'orders', tunnel: 'cdc', create: 'BaseData', dir, args: ['--exit-when-done'] }));
    const r = await run.exited;
    assert.equal(r.code, 0, run.stderr());
    assert.doesNotMatch(run.stderr(), /tunnel created/);
    assert.equal(await calls(emu, '/tunnel/create'), before, 'CreateTunnel sent for a present tunnel');
    assert.equal((await tunnelsNamed(emu, 'cdc')).length, 1);
    assert.ok(delivered([dir], 200));
  } finally {
    await emu.stop();
  }
});

test('two processes creating the same tunnel at once share one tunnel', async () => {
  const emu = await startEmulator({ args: ['--partitions', '4'] });
  const dirs = [tempDir('lunnel-create-a-'), tempDir('lunnel-create-b-')];
  try {
    await emu.admin('load', { table: 'orders', rows: 400, create: true });
    // the emulator answers a delayed request after handling it: with ListTunnel replies held
    // 800 ms, both processes' lists are handled before either creates, so both see "absent"
    await emu.admin('faults', { path: '/tunnel/list', delay_ms: 800, error_rate: 0 });
    const runs = dirs.map((dir) => track(startRun(emu, { table: 'orders', tunnel: 'cdc', create: 'BaseAndStream', dir })));
    const tu = await waitFor(async () => {
      const t = await tunnelState(emu, 'cdc');
      return t && t.clients.length === 2 && t;
    }, 30000, 'both processes connected to the tunnel');
    assert.equal(await calls(emu, '/tunnel/create'), 2, 'the race was not exercised: one process did not try to create');
    assert.equal((await tunnelsNamed(emu, 'cdc')).length, 1);
    const logs = runs.map((r) => r.stderr());
    assert.equal(logs.filter((l) => /tunnel created\b/.test(l) && !/concurrently/.test(l)).length, 1, logs.join('\n----\n'));
    assert.equal(logs.filter((l) => /created concurrently/.test(l)).length, 1, logs.join('\n----\n'));
    assert.ok(tu.tunnel_id);
    await waitFor(() => delivered(dirs, 400), 30000, 'every base row from the two processes');
    for (const run of runs) assert.equal((await run.stop()).code, 0, run.stderr());
  } finally {
    await emu.stop();
  }
});
