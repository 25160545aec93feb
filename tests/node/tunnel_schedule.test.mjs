// tunnel_schedule.test.mjs: Schedule on the wire and on the emulator.
// - The bytes `lunnel tunnel schedule` sends equal a ScheduleRequest encoded by hand from the
//   official schema (the Go SDK's tunnelservice.pb.go: tunnel_id = 1, channels = 3; Channel:
//   channel_id = 1, version = 2, status = 3), captured by a plain HTTP server: not our encoder
//   checking itself.
// - The emulator refuses a request that carries channels in field 2 (a misread schema) with
//   OTSParameterInvalid instead of a silent success, and changes nothing.
// - End to end: a channel consumed by `lunnel run` is moved by Schedule: CLOSING makes its owner
//   release it (the emulator hands it out again at a higher version), TERMINATED takes it away,
//   OPEN gives it back, and rows written meanwhile still arrive.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import {
  post, readRecords, runLunnel, runLunnelSync, startEmulator, startRun, tempDir, waitFor
} from '../harness/index.mjs';
import { tunnelState, track, killAll } from './lib/ids.mjs';

after(killAll);

function cli(emu, args) {
  const r = runLunnelSync(['tunnel', ...args, '--endpoint', emu.endpoint, '--instance', emu.instance], { emu });
  return { code: r.code, out: r.stdout, err: r.stderr };
}

// A length-delimited field by hand: key byte (field << 3 | 2), one-byte length, payload.
function ld(field, payload) {
  assert.ok(payload.length < 128);
  return Buffer.concat([Buffer.from([(field << 3) | 2, payload.length]), payload]);
}

test('lunnel tunnel schedule sends channels in field 3, as the official schema', async () => {
  let body = null;
  const server = createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      if (req.url === '/tunnel/schedule') body = Buffer.concat(chunks);
      res.writeHead(200, { 'x-ots-requestid': 'capture-1', 'Content-Length': 0 });
      res.end();
    });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  try {
    const endpoint = `http://127.0.0.1:${server.address().port}`;
    // asynchronous: the capture server answers on this process's event loop
    const r = await runLunnel(['tunnel', 'schedule', '--endpoint', endpoint, '--instance', 'lunnel',
      '--tunnel-id', 'tid-1', '--channel', 'p1', '--status', 'CLOSING', '--version', '7'],
    { env: { TABLESTORE_ACCESS_KEY_ID: 'ak', TABLESTORE_ACCESS_KEY_SECRET: 'sk' } });
    assert.equal(r.code, 0, r.stderr);
    // Channel { 1: "p1", 2: 7 (varint), 3: CLOSING = 2 (varint) }
    const channel = Buffer.concat([ld(1, Buffer.from('p1')), Buffer.from([2 << 3, 7]), Buffer.from([3 << 3, 2])]);
    const expected = Buffer.concat([ld(1, Buffer.from('tid-1')), ld(3, channel)]);
    assert.ok(body, 'no /tunnel/schedule request arrived');
    assert.equal(body.toString('hex'), expected.toString('hex'));
  } finally {
    server.close();
  }
});

test('a Schedule moves a channel of a running lunnel on the emulator', async () => {
  const emu = await startEmulator({ args: ['--partitions', '2'] });
  const dir = tempDir('lunnel-schedule-');
  try {
    await emu.admin('load', { table: 'orders', rows: 10, create: true });
    assert.equal(cli(emu, ['create', '--table', 'orders', '--tunnel', 'cdc', '--type', 'Stream']).code, 0);
    const run = track(startRun(emu, { table: 'orders', tunnel: 'cdc', dir }));
    const tu = await waitFor(async () => {
      const t = await tunnelState(emu, 'cdc');
      return t && t.channels.length === 2 && t.channels.every((ch) => ch.status === 'OPEN' && ch.client_id) && t;
    }, 20000, 'both channels OPEN at lunnel');
    const owner = tu.channels[0].client_id;
    const target = tu.channels[0].channel_id;
    const v0 = tu.channels[0].version;
    const channelOf = async () => (await tunnelState(emu, 'cdc')).channels.find((ch) => ch.channel_id === target);

    // a request with channels in field 2 is refused and changes nothing
    const bad = Buffer.concat([ld(1, Buffer.from(tu.tunnel_id)),
      ld(2, Buffer.concat([ld(1, Buffer.from(target)), Buffer.from([2 << 3, 0]), Buffer.from([3 << 3, 4])]))]);
    const creds = { accessKeyId: emu.accessKeyId, accessKeySecret: emu.accessKeySecret, instance: emu.instance, apiVersion: '2018-04-01' };
    const refused = await post(emu.port, '/tunnel/schedule', bad, creds);
    assert.equal(refused.status, 400);
    assert.match(refused.body.toString('latin1'), /OTSParameterInvalid/);
    assert.match(refused.body.toString('latin1'), /field 3/);
    const same = await channelOf();
    assert.equal(same.status, 'OPEN');
    assert.equal(same.version, v0);

    // CLOSING: the owner drains and reports CLOSE; the emulator hands the channel out again
    assert.equal(cli(emu, ['schedule', '--tunnel-id', tu.tunnel_id, '--channel', target, '--status', 'CLOSING']).code, 0);
    await waitFor(async () => { const ch = await channelOf(); return ch.status === 'OPEN' && ch.version >= v0 + 2; },
      20000, 'the channel released and reopened at a higher version');

    // TERMINATED takes it from lunnel; lunnel does not fight it
    assert.equal(cli(emu, ['schedule', '--tunnel-id', tu.tunnel_id, '--channel', target, '--status', 'TERMINATED']).code, 0);
    let ch = await channelOf();
    assert.equal(ch.status, 'TERMINATED');
    assert.equal(ch.client_id, '');
    // rows written while the channel is away
    await emu.admin('load', { table: 'orders', rows: 40, start: 1000 });
    await waitFor(async () => (await tunnelState(emu, 'cdc')).channels.filter((x) => x.channel_id !== target)
      .every((x) => x.status === 'OPEN'), 10000, 'the other channel still OPEN');
    ch = await channelOf();
    assert.equal(ch.status, 'TERMINATED', 'lunnel reopened a channel the operator terminated');

    // OPEN gives it back to the (only) client, which resumes from its checkpoint
    assert.equal(cli(emu, ['schedule', '--tunnel-id', tu.tunnel_id, '--channel', target, '--status', 'OPEN']).code, 0);
    await waitFor(async () => { const x = await channelOf(); return x.status === 'OPEN' && x.client_id === owner; },
      20000, 'the channel back at lunnel');
    await waitFor(() => {
      const ids = new Set(readRecords(dir).map((r) => r.pk[0][2]));
      for (let i = 0; i < 40; i++) if (!ids.has(String(1000 + i))) return false;
      return true;
    }, 30000, 'every row written while the channel was terminated');
    const r = await run.stop();
    assert.equal(r.code, 0, run.stderr());
  } finally {
    await emu.stop();
  }
});
