// emulator_auth.test.mjs: lunnel-emulator authenticates as strictly as the service, with its
// documented errors: x-ots-date outside the 15-minute window (2001, 2099, a replay from 16
// minutes ago) is 403 OTSAuthFailed "Mismatch between system time and x-ots-date", an
// unparsable date 400 "Invalid date format", a missing x-ots-instancename 400 "Missing
// header", another instance, an unknown key id or a wrong secret 403 OTSAuthFailed; no error
// names the configured key id or secret. Requests are signed here independently of lunnel
// (node:crypto), and the official Node SDK is used where it can express the case.
import assert from 'node:assert/strict';
import { createHash, createHmac } from 'node:crypto';
import { request } from 'node:http';
import { after, before, describe, test } from 'node:test';

import { startEmulator } from '../harness/index.mjs';

const AK = 'configured-ak-7f3e';
const SECRET = 'configured-secret-91bd';

// Signs POST `path` with the given x-ots-* headers (a header set to undefined is left out).
function signed(path, body, over = {}, secret = SECRET) {
  const h = {
    'x-ots-date': new Date().toISOString(),
    'x-ots-apiversion': '2015-12-31',
    'x-ots-accesskeyid': AK,
    'x-ots-instancename': 'lunnel',
    'x-ots-contentmd5': createHash('md5').update(body).digest('base64'),
    ...over,
  };
  for (const k of Object.keys(h)) if (h[k] === undefined) delete h[k];
  const canon = Object.keys(h).sort().map((k) => `${k}:${String(h[k]).trim()}\n`).join('');
  h['x-ots-signature'] = createHmac('sha1', secret).update(`${path}\nPOST\n\n${canon}`).digest('base64');
  return h;
}

function send(port, path, body, headers) {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method: 'POST', path, agent: false,
      headers: { ...headers, 'Content-Length': body.length }, timeout: 10000 }, (res) => {
      const c = [];
      res.on('data', (d) => c.push(d));
      res.on('end', () => resolve({ status: res.statusCode, text: Buffer.concat(c).toString('latin1') }));
    });
    req.on('timeout', () => req.destroy(new Error('no answer within 10 s')));
    req.on('error', reject);
    req.end(body);
  });
}

const call = (client, fn, params) =>
  new Promise((resolve, reject) => client[fn](params, (err, data) => (err ? reject(err) : resolve(data))));

function noSecrets(text) {
  assert.ok(!text.includes(AK), `the configured key id leaked: ${text}`);
  assert.ok(!text.includes(SECRET), `the secret leaked: ${text}`);
}

describe('lunnel-emulator authentication', () => {
  let emu;
  const empty = Buffer.alloc(0);
  before(async () => { emu = await startEmulator({ accessKeyId: AK, accessKeySecret: SECRET }); });
  after(async () => { await emu.stop(); });

  test('a correctly signed request passes, with either date format the SDKs send', async () => {
    let r = await send(emu.port, '/ListTable', empty, signed('/ListTable', empty));
    assert.equal(r.status, 200, r.text);
    // the Python SDK's RFC 1123 date
    r = await send(emu.port, '/ListTable', empty, signed('/ListTable', empty, { 'x-ots-date': new Date().toUTCString() }));
    assert.equal(r.status, 200, r.text);
    // 14 minutes off either way is inside the service's window
    for (const off of [-14, 14]) {
      const d = new Date(Date.now() + off * 60000).toISOString();
      r = await send(emu.port, '/ListTable', empty, signed('/ListTable', empty, { 'x-ots-date': d }));
      assert.equal(r.status, 200, `${off} min: ${r.text}`);
    }
  });

  for (const [what, date] of [
    ['2001', '2001-01-01T00:00:00.000Z'],
    ['2099', '2099-01-01T00:00:00.000Z'],
    ['a replay signed 16 minutes ago', () => new Date(Date.now() - 16 * 60000).toISOString()],
    ['a date 16 minutes ahead (RFC 1123)', () => new Date(Date.now() + 16 * 60000).toUTCString()],
  ]) {
    test(`x-ots-date ${what}: 403 OTSAuthFailed, Mismatch between system time and x-ots-date`, async () => {
      const d = typeof date === 'function' ? date() : date;
      const r = await send(emu.port, '/ListTable', empty, signed('/ListTable', empty, { 'x-ots-date': d }));
      assert.equal(r.status, 403, r.text);
      assert.match(r.text, /OTSAuthFailed/);
      assert.ok(r.text.includes(`Mismatch between system time and x-ots-date: ${d}.`), r.text);
      noSecrets(r.text);
    });
  }

  test('x-ots-date "not-a-date": 400 OTSParameterInvalid, Invalid date format', async () => {
    const r = await send(emu.port, '/ListTable', empty, signed('/ListTable', empty, { 'x-ots-date': 'not-a-date' }));
    assert.equal(r.status, 400, r.text);
    assert.match(r.text, /OTSParameterInvalid/);
    assert.match(r.text, /Invalid date format: not-a-date\./);
  });

  test('no x-ots-instancename: 400 OTSParameterInvalid, Missing header', async () => {
    const r = await send(emu.port, '/ListTable', empty, signed('/ListTable', empty, { 'x-ots-instancename': undefined }));
    assert.equal(r.status, 400, r.text);
    assert.match(r.text, /OTSParameterInvalid/);
    assert.match(r.text, /Missing header: x-ots-instancename\./);
  });

  test('another instance (official SDK): 403 OTSAuthFailed, instance not found', async () => {
    let err;
    try { await call(emu.client({ instancename: 'elsewhere' }), 'listTable', {}); } catch (e) { err = e; }
    assert.ok(err, 'accepted a request for another instance');
    assert.equal(err.code, 403);
    assert.match(err.message, /OTSAuthFailed|instance is not found/);
  });

  test('an unknown access key id: 403 without naming the configured one', async () => {
    const r = await send(emu.port, '/ListTable', empty, signed('/ListTable', empty, { 'x-ots-accesskeyid': 'someone-else' }));
    assert.equal(r.status, 403, r.text);
    assert.match(r.text, /The AccessKeyID does not exist\./);
    noSecrets(r.text);
  });

  test('a wrong secret (official SDK): 403 Signature mismatch, secret not named', async () => {
    let err;
    try { await call(emu.client({ secretAccessKey: 'not-the-secret' }), 'listTable', {}); } catch (e) { err = e; }
    assert.ok(err);
    assert.equal(err.code, 403);
    assert.match(err.message, /Signature mismatch/);
    noSecrets(err.message);
    const r = await send(emu.port, '/ListTable', empty, signed('/ListTable', empty, {}, 'not-the-secret'));
    assert.equal(r.status, 403);
    noSecrets(r.text);
  });

  test('every refusal is counted as an error and the emulator keeps serving', async () => {
    const before = (await emu.admin('stats')).requests['/ListTable'];
    const r1 = await send(emu.port, '/ListTable', empty, signed('/ListTable', empty, { 'x-ots-date': '2001-01-01T00:00:00.000Z' }));
    assert.equal(r1.status, 403);
    const r = await send(emu.port, '/ListTable', empty, signed('/ListTable', empty));
    assert.equal(r.status, 200);
    const now = (await emu.admin('stats')).requests['/ListTable'];
    assert.equal(now.requests - before.requests, 2);
    assert.equal(now.errors - before.errors, 1);
  });
});
