// emulator_restore_busy.test.mjs: while lunnel-emulator restores its --data-dir at start-up it
// already accepts connections and answers every request at once with the service's retriable
// busy error (503 OTSServerBusy; the tunnel API's OTSTunnelServerUnavailable), never with
// partial data; the official Node SDK, retrying as it does by default, gets the full answer
// once the restore is done. A table of 100,000 rows (admin load) is restored from the log
// while a client asks for the row count every 2 ms from the moment the emulator is spawned.
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';

import { freePort, post, startEmulator, tablestore, sleep, tempDir } from '../harness/index.mjs';
import { decode } from './lib/tunnel_wire.mjs';

const TS = tablestore();
const ROWS = 100000;
const creds = { accessKeyId: 'lunnel-ak', accessKeySecret: 'lunnel-secret', instance: 'lunnel' };

test('requests during the start-up restore get a retriable busy error, then the full data', { timeout: 240000 }, async () => {
  const dir = path.join(tempDir('lunnel-restore-busy-'), 'data');
  let emu = null;
  try {
    emu = await startEmulator({ args: ['--data-dir', dir], readyTimeoutMs: 60000 });
    // the bulk load may take long in a sanitizer build: a generous deadline
    const r = await post(emu.port, '/_emulator/load', JSON.stringify({ table: 'big', rows: ROWS, value_bytes: 50, create: true }), creds, 180000);
    assert.equal(r.status, 200, r.body.toString());
    emu.child.kill('SIGKILL');
    await emu.exited;

    const port = await freePort();
    const seen = { busy: 0, tunnelBusy: 0, full: 0, other: [] };
    let stop = false;
    let sdkDone = null;
    const pinger = (async () => {
      while (!stop) {
        try {
          const a = await post(port, '/_emulator/stats', '{}', creds, 10000);
          const body = JSON.parse(a.body.toString('utf8'));
          if (a.status === 503 && body.code === 'OTSServerBusy') {
            seen.busy++;
            if (seen.busy === 1) {
              // a tunnel call and an SDK call made while busy
              const t = await post(port, '/tunnel/list', Buffer.alloc(0), creds, 10000);
              if (t.status === 503 && decode(t.body)[1]?.[0].toString() === 'OTSTunnelServerUnavailable') seen.tunnelBusy++;
              else if (t.status !== 200) seen.other.push(`tunnel/list ${t.status}`);
              const client = new TS.Client({ accessKeyId: creds.accessKeyId, secretAccessKey: creds.accessKeySecret, endpoint: `http://127.0.0.1:${port}`, instancename: creds.instance, maxRetries: 200 });
              sdkDone = new Promise((resolve, reject) => client.getRow({ tableName: 'big', primaryKey: [{ id: TS.Long.fromNumber(ROWS - 1) }], maxVersions: 1 }, (err, data) => (err ? reject(err) : resolve(data))));
            }
          } else if (a.status === 200 && body.tables?.[0]?.rows === ROWS) {
            seen.full++;
          } else {
            seen.other.push(`${a.status} ${JSON.stringify(body).slice(0, 200)}`);
          }
        } catch (e) {
          if (!/ECONNREFUSED|ECONNRESET/.test(e.message)) seen.other.push(e.message);
        }
        await sleep(2);
      }
    })();
    emu = await startEmulator({ args: ['--listen', `127.0.0.1:${port}`, '--data-dir', dir], readyTimeoutMs: 120000 });
    const deadline = Date.now() + 10000;
    while (seen.full === 0 && Date.now() < deadline) await sleep(10);
    stop = true;
    await pinger;
    assert.deepEqual(seen.other, [], 'every answer is busy or the whole table');
    assert.ok(seen.busy > 0, `some requests came during the restore (${JSON.stringify(seen)})`);
    assert.equal(seen.tunnelBusy, 1, 'the tunnel API answers with its retriable error');
    assert.ok(seen.full > 0, 'the whole table after the restore');
    assert.match(emu.stderr(), /restoring the data dir/, 'the busy period is logged');
    const row = await sdkDone;
    assert.equal(row.row.primaryKey[0].value.toNumber(), ROWS - 1, 'the SDK, retrying, gets the row');
  } finally {
    if (emu) await emu.stop();
  }
});
