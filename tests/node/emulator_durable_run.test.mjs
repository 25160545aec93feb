// emulator_durable_run.test.mjs: the real consumer survives an emulator crash. `lunnel run`
// (collector script) consumes a Stream tunnel of lunnel-emulator --data-dir while the
// official Node SDK writes; the emulator is killed with SIGKILL twice and restarted on the
// same port. lunnel's next heartbeat gets OTSResourceGone (the restarted emulator does not
// know its client), it reconnects, resumes from its checkpoints and in the end has
// delivered every acknowledged write, without exiting.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  startEmulator, tablestore, Long, createTable, readRecords, startRun, tempDir, waitFor, random, sleep
} from '../harness/index.mjs';
import { decode, str, tunnelClient } from './lib/tunnel_wire.mjs';

const TS = tablestore();
const call = (client, fn, params) =>
  new Promise((resolve, reject) => client[fn](params, (err, d) => (err ? reject(err) : resolve(d))));

test('lunnel run keeps consuming across SIGKILLed emulator restarts (--data-dir)', { timeout: 60000 }, async () => {
  const data = tempDir('lunnel-durable-run-');
  const out = tempDir();
  const base = ['--data-dir', data, '--partitions', '2'];
  let emu = await startEmulator({ args: base });
  const port = emu.port;
  const acked = new Set();
  let run;
  try {
    await createTable(emu.client(), 'orders');
    run = startRun(emu, { table: 'orders', tunnel: 'cdc', create: 'Stream', dir: out });
    // The tunnel starts at LATEST: write only once lunnel created it and holds both
    // channels (DescribeTunnel: ChannelInfo.channel_status, field 3).
    const tc = tunnelClient(emu);
    await waitFor(async () => {
      const d = await tc.call('describe', { 1: 'orders', 2: 'cdc' });
      return d.status === 200 && (d.msg[2] || []).filter((c) => str(decode(c), 3) === 'OPEN').length === 2;
    }, 20000, 'lunnel holding both channels');
    let next = 1;
    const writeSome = async (client, n) => {
      for (let i = 0; i < n; i++) {
        const id = next++;
        try {
          await call(client, 'putRow', {
            tableName: 'orders', condition: new TS.Condition(TS.RowExistenceExpectation.IGNORE, null),
            primaryKey: [{ id: Long.fromNumber(id) }, { k: 'x' }], attributeColumns: [{ v: `v${id}` }],
          });
          acked.add(id);
        } catch { return; }
      }
    };
    for (let round = 0; round < 2; round++) {
      const client = emu.client();
      const w = writeSome(client, 100000);
      await waitFor(() => acked.size >= 50 * (round + 1), 20000, 'writes acknowledged');
      await sleep(Math.floor(random() * 200));
      emu.child.kill('SIGKILL');
      await emu.exited;
      await w;
      emu = await startEmulator({ args: [...base, '--listen', `127.0.0.1:${port}`] });
      assert.equal(emu.port, port);
    }
    const client = emu.client();
    await writeSome(client, 50);
    const seen = () => new Set(readRecords(out).map((r) => Number(r.pk[0][2])));
    await waitFor(() => [...acked].every((id) => seen().has(id)), 30000, 'every acknowledged write delivered by lunnel')
      .catch((e) => { const s = seen(); throw new Error(`${e.message}: missing ${[...acked].filter((id) => !s.has(id)).slice(0, 20)}`); });
    assert.equal(run.child.exitCode, null, `lunnel exited: ${run.stderr()}`);
  } finally {
    if (run) await run.stop();
    await emu.stop();
  }
});
