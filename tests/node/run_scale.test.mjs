// run_scale.test.mjs: scale-out of `lunnel run` on one tunnel (8 partitions on the emulator):
// three processes share the channels (each gets some and consumes records); one is killed
// with SIGKILL and its channels move to the other two; a new process joins and takes channels
// through CLOSING (an old owner drains, checkpoints and reports CLOSE); nothing is missing.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startEmulator, startRun, tempDir, waitFor } from '../harness/index.mjs';
import { allIds, countIds, idsScript, killAll, missingAndDuplicates, track, tunnelState } from './lib/ids.mjs';

let emu;
before(async () => {
  emu = await startEmulator({ args: ['--partitions', '8'] });
  await emu.admin('tunnel_config', { batch_records: 200 });
});
after(async () => { await killAll(); await emu?.stop(); });

const clientOf = (run) => (run.stderr().match(/connected.*client_id=(\S+)/g) || []).map((l) => l.match(/client_id=(\S+)/)[1]).pop();

test('3 processes share 8 channels; a killed one hands over; a new one takes channels via CLOSING; nothing missing', { timeout: 120000 }, async () => {
  const table = 'scale', tunnel = 'ts', CHUNK = 4000;
  let loaded = 0;
  const load = async () => {
    await emu.admin('load', { table, rows: CHUNK, start: loaded, columns: 1, value_bytes: 16, create: loaded === 0 ? undefined : false });
    loaded += CHUNK;
  };
  await emu.admin('load', { table, rows: 0, columns: 1, value_bytes: 16 });
  const args = ['--heartbeat-timeout', '1'];
  const start = (name, create) => {
    const dir = tempDir();
    const run = startRun(emu, { table, tunnel, create, dir, script: idsScript, args: [...args, '--client-tag', name] });
    track(run);
    return { name, dir, run };
  };
  const owners = async () => {
    const st = await tunnelState(emu, tunnel);
    const by = {};
    for (const ch of st?.channels || []) if (ch.status === 'OPEN' && ch.client_id) (by[ch.client_id] ||= []).push(ch.channel_id);
    return by;
  };
  const a = start('a', 'Stream');
  await a.run.waitLog(/to=running/);
  const b = start('b'), c = start('c');
  await Promise.all([b, c].map((p) => p.run.waitLog(/connected/)));
  // the service spreads the 8 OPEN channels over the 3 clients
  await waitFor(async () => {
    const by = await owners();
    return [a, b, c].every((p) => (by[clientOf(p.run)] || []).length >= 2) && Object.values(by).flat().length === 8;
  }, 30000, 'channels spread over 3 clients');
  await load();
  await waitFor(() => [a, b, c].every((p) => countIds(p.dir) > 0), 30000, 'each process consumes records');

  // kill one: its channels go to the two others
  const bClient = clientOf(b.run);
  const bChannels = (await owners())[bClient];
  const killMark = [a, c].map((p) => p.run.stderr().length);
  b.run.child.kill('SIGKILL');
  await b.run.exited;
  await load();
  await waitFor(async () => {
    const by = await owners();
    return !by[bClient] && Object.values(by).flat().length === 8 &&
      (by[clientOf(a.run)] || []).length + (by[clientOf(c.run)] || []).length === 8;
  }, 30000, 'the killed client\'s channels moved to the others');
  await waitFor(() => {
    const log = [a, c].map((p, i) => p.run.stderr().slice(killMark[i])).join('');
    return bChannels.every((ch) => log.includes(`channel=${ch} from=opening to=running`));
  }, 30000, `the others run ${bChannels}`);

  // a new one joins: old owners give channels back through CLOSING
  const mark = [a, c].map((p) => p.run.stderr().length);
  const d = start('d');
  await waitFor(async () => ((await owners())[clientOf(d.run)] || []).length >= 2, 30000, 'the new process takes channels');
  const since = [a, c].map((p, i) => p.run.stderr().slice(mark[i])).join('');
  assert.match(since, /action=drain status=CLOSING/i, 'a handoff to the new process went through CLOSING');
  assert.match(since, /channel reported.*status=CLOSE /, 'the old owner reported CLOSE');
  await load();
  await load();
  await waitFor(() => countIds(d.dir) > 0, 30000, 'the new process consumes records');

  const dirs = [a, b, c, d].map((p) => p.dir);
  await waitFor(() => missingAndDuplicates(allIds(dirs), loaded).missing.length === 0, 45000, 'every change');
  for (const p of [a, c, d]) assert.equal((await p.run.stop()).code, 0, p.run.stderr().slice(-2000));
  const { missing, extra } = missingAndDuplicates(allIds(dirs), loaded);
  assert.deepEqual(missing, []);
  assert.equal(extra, 0);
});
