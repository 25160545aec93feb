// tunnel_handoff.test.mjs: lunnel-emulator's Tunnel Service with the real lunnel worker:
// two `lunnel run` processes share a BaseAndStream tunnel (channels balanced between them),
// one is killed with SIGKILL, the emulator drops it after its heartbeat timeout and hands its
// channels to the survivor, which delivers the rest. Every row arrives; base rows exactly
// once. Waits on conditions (admin `tunnels` state, output files) with deadlines, never on
// bare sleeps. Skips when build/lunnel is not built.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { lunnelBinary, runLunnel, startEmulator, startLunnel, tempDir, waitFor } from '../harness/index.mjs';

const lunnelBin = lunnelBinary();

function lines(file) {
  return existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean) : [];
}

test('two lunnel workers share a tunnel; a killed one hands its channels over', { skip: !existsSync(lunnelBin) && `${lunnelBin} not built` }, async () => {
  const emu = await startEmulator({ args: ['--partitions', '4'] });
  const dir = tempDir('lunnel-handoff-');
  const procs = [];
  try {
    const conn = ['--endpoint', emu.endpoint, '--instance', emu.instance];
    await emu.admin('load', { table: 'orders', rows: 2000, value_bytes: 50 });
    const create = await runLunnel(['tunnel', 'create', ...conn, '--table', 'orders', '--tunnel', 'cdc', '--type', 'BaseAndStream'], { emu });
    assert.equal(create.code, 0, create.stderr);
    await emu.admin('load', { table: 'orders', rows: 1000, start: 2000, value_bytes: 50 });

    const script = path.join(dir, 'ids.lua');
    writeFileSync(script, `local M = {}
function M.process(ctx, batch)
  local f = assert(io.open(ctx.custom.out, "a"))
  for _, r in batch:iter() do f:write(ctx.channel_id, " ", tostring(r.pk.id), "\\n") end
  f:close()
end
return M
`);
    const out = (n) => path.join(dir, `out.${n}`);
    const worker = (n) => startLunnel(['run', ...conn, '--table', 'orders', '--tunnel', 'cdc', '--workers', '1', '--no-watch',
      '--heartbeat-interval', '200ms', '--heartbeat-timeout', '1s', '--checkpoint-interval', '200ms',
      '--client-tag', `w${n}`, '--custom', JSON.stringify({ out: out(n) }), script], { emu });
    procs.push(worker('a'), worker('b'));
    const all = () => [...lines(out('a')), ...lines(out('b'))];

    await waitFor(() => all().length >= 3000, 30000, '3000 records');
    // Balanced: two clients, two OPEN stream channels each.
    const tunnelState = async () => (await emu.admin('tunnels', {})).tunnels.find((t) => t.tunnel_name === 'cdc');
    await waitFor(async () => {
      const t = await tunnelState();
      const owners = t.channels.filter((c) => c.type === 'Stream' && c.status === 'OPEN').map((c) => c.client_id);
      return t.clients.length === 2 && owners.length === 4 && new Set(owners).size === 2 &&
        owners.filter((o) => o === owners[0]).length === 2;
    }, 30000, 'a 2/2 split of the stream channels');

    // Kill worker a: after its 1 s heartbeat timeout its channels go to b.
    procs[0].kill('SIGKILL');
    await procs[0].exited;
    const survivor = await waitFor(async () => {
      const t = await tunnelState();
      const open = t.channels.filter((c) => c.type === 'Stream' && c.status === 'OPEN');
      return t.clients.length === 1 && open.length === 4 && open.every((c) => c.client_id === t.clients[0].client_id) && t.clients[0].client_id;
    }, 30000, 'b to own all 4 stream channels');
    assert.match(survivor, /^wb-/);

    await emu.admin('load', { table: 'orders', rows: 500, start: 3000, value_bytes: 50 });
    await waitFor(() => new Set(all().map((l) => l.split(' ')[1])).size >= 3500, 30000, 'all 3500 rows');
    const counts = new Map();
    for (const l of all()) {
      const [ch, id] = l.split(' ');
      const key = `${ch.startsWith('BaseData_') ? 'base' : 'stream'}:${id}`;
      counts.set(key, (counts.get(key) || 0) + 1);
    }
    for (let id = 0; id < 2000; id++) assert.equal(counts.get(`base:${id}`), 1, `base row ${id}`);
    for (let id = 2000; id < 3500; id++) assert.ok(counts.get(`stream:${id}`) >= 1, `stream row ${id}`);
    const stats = await emu.admin('tunnel_stats', {});
    assert.ok(stats.records_served >= 3500);
  } finally {
    await Promise.all(procs.map((p) => p.stop()));
    await emu.stop();
  }
});
