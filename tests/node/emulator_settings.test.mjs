// emulator_settings.test.mjs: lunnel-emulator --data-dir keeps what the admin API set and
// names a flag mismatch as such. A data dir created with --partitions 16 gets rows, a fault
// with a count, a retention and a tunnel_config; a fault is used once. Restarting with
// --partitions 4 is refused (exit 2) with "data dir ... was created with --partitions 16",
// no talk of damage or moving the data dir, and nothing changed; restarting without
// --partitions uses 16 and has the rows, the fault with its remaining count, the retention and
// the batch size; a flag given again on the command line wins over the stored setting.
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';

import { startEmulator, killAll, tempDir } from '../harness/index.mjs';

const call = (client, fn, params) =>
  new Promise((resolve, reject) => client[fn](params, (err, data) => (err ? reject(err) : resolve(data))));

test('admin settings persist with --data-dir; a --partitions mismatch is named', { timeout: 60000 }, async () => {
  const dir = path.join(tempDir('lunnel-settings-'), 'data');
  try {
    let emu = await startEmulator({ args: ['--data-dir', dir, '--partitions', '16'] });
    await emu.admin('load', { table: 'orders', rows: 100, create: true });
    await emu.admin('faults', { path: '/ListTable', error_rate: 1, count: 3, code: 'OTSServerBusy' });
    await emu.admin('retention', { retention_ms: 3600000 });
    await emu.admin('tunnel_config', { batch_records: 77, heartbeat_scale: 2 });
    let err;
    try { await call(emu.client(), 'listTable', {}); } catch (e) { err = e; }
    assert.ok(err && /OTSServerBusy/.test(err.message), `the fault answered: ${err?.message}`);
    assert.equal((await emu.stop()).code, 0);

    // another --partitions: a flag mismatch, refused with the data untouched
    let refused;
    try { emu = await startEmulator({ args: ['--data-dir', dir, '--partitions', '4'] }); } catch (e) { refused = e; }
    assert.ok(refused, 'started with another --partitions');
    assert.match(refused.message, /exited \(2\)/);
    assert.match(refused.message, /data dir .* was created with --partitions 16/);
    assert.match(refused.message, /nothing was changed/);
    assert.doesNotMatch(refused.message, /damage|move the data dir/i);

    // no --partitions: the stored value; the settings are back
    emu = await startEmulator({ args: ['--data-dir', dir] });
    assert.match(emu.stderr(), /was created with --partitions 16: using it/);
    const conf = await emu.admin('tunnel_config', {});
    assert.equal(conf.partitions, 16);
    assert.equal(conf.batch_records, 77);
    assert.equal(conf.heartbeat_scale, 2);
    assert.equal(conf.retention_ms, 3600000);
    const f = (await emu.admin('faults', {})).faults;
    assert.equal(f.length, 1);
    assert.deepEqual([f[0].path, f[0].code, f[0].remaining], ['/ListTable', 'OTSServerBusy', 2]);
    const stats = await emu.admin('stats');
    assert.equal(stats.tables?.orders?.rows ?? stats.tables?.find?.((t) => t.name === 'orders')?.rows, 100, JSON.stringify(stats.tables));
    assert.equal((await emu.stop()).code, 0);

    // a flag named again wins over the stored setting
    emu = await startEmulator({ args: ['--data-dir', dir, '--batch-records', '5'] });
    assert.equal((await emu.admin('tunnel_config', {})).batch_records, 5);
    assert.equal((await emu.admin('tunnel_config', {})).retention_ms, 3600000);
    assert.equal((await emu.stop()).code, 0);
  } finally {
    await killAll(null);
  }
});
