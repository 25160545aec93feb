// emulator.mjs: start lunnel-emulator for a Node test, wait for its ready line, make signed
// admin calls (POST /_emulator/<action>, JSON), and stop it. Reused by every tests/node suite.
//
//   import { startEmulator } from './lib/emulator.mjs';
//   const emu = await startEmulator({ args: ['--partitions', '2'] });
//   emu.endpoint, emu.instance, emu.accessKeyId, emu.accessKeySecret, emu.port
//   const stats = await emu.admin('stats', {});
//   emu.client()            // a tablestore.Client for this emulator (needs tests/node/setup.sh)
//   await emu.stop();       // SIGTERM, waits for exit (SIGKILL after 5 s)
import { spawn } from 'node:child_process';
import { createHash, createHmac } from 'node:crypto';
import { request } from 'node:http';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));

export function emulatorBinary() {
  const dir = process.env.LUNNEL_BUILD_DIR || path.resolve(here, '../../../build');
  return path.join(dir, 'lunnel-emulator');
}

// Signs like the SDKs (PROTOCOL.md section 1): HMAC-SHA1 over
// path \n POST \n \n sorted "x-ots-name:value\n" lines.
export function signHeaders(pathname, body, { accessKeyId, accessKeySecret, instance, apiVersion = '2015-12-31', stsToken } = {}) {
  const h = {
    'x-ots-date': new Date().toISOString(),
    'x-ots-apiversion': apiVersion,
    'x-ots-accesskeyid': accessKeyId,
    'x-ots-instancename': instance,
    'x-ots-contentmd5': createHash('md5').update(body).digest('base64'),
  };
  if (stsToken) h['x-ots-ststoken'] = stsToken;
  const canon = Object.keys(h).sort().map((k) => `${k}:${String(h[k]).trim()}\n`).join('');
  const s = `${pathname}\nPOST\n\n${canon}`;
  h['x-ots-signature'] = createHmac('sha1', accessKeySecret).update(s).digest('base64');
  return h;
}

// One signed POST; resolves { status, headers, body (Buffer) }.
export function post(port, pathname, body, creds, timeoutMs = 10000) {
  const buf = Buffer.isBuffer(body) ? body : Buffer.from(body);
  const headers = { ...signHeaders(pathname, buf, creds), 'Content-Length': buf.length, 'Content-Type': 'application/octet-stream' };
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method: 'POST', path: pathname, headers, timeout: timeoutMs }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on('timeout', () => req.destroy(new Error(`POST ${pathname}: no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end(buf);
  });
}

export async function startEmulator({ args = [], instance = 'lunnel', accessKeyId = 'lunnel-ak', accessKeySecret = 'lunnel-secret', readyTimeoutMs = 10000, env = {} } = {}) {
  const bin = emulatorBinary();
  const child = spawn(bin, ['--listen', '127.0.0.1:0', '--instance', instance, '--access-key-id', accessKeyId, '--access-key-secret', accessKeySecret, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  });
  let stderr = '';
  child.stderr.on('data', (d) => { stderr += d; if (stderr.length > 65536) stderr = stderr.slice(-32768); });
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  const port = await new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`${bin}: no ready line within ${readyTimeoutMs} ms; stderr: ${stderr}`)); }, readyTimeoutMs);
    child.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/^lunnel-emulator listening on http:\/\/127\.0\.0\.1:(\d+) instance=(\S+)\n/);
      if (m) { clearTimeout(timer); resolve(Number(m[1])); }
    });
    child.on('error', (e) => { clearTimeout(timer); reject(new Error(`cannot start ${bin}: ${e.message}`)); });
    child.on('exit', (code) => { clearTimeout(timer); reject(new Error(`${bin} exited (${code}) before ready; stderr: ${stderr}`)); });
  });
  const creds = { accessKeyId, accessKeySecret, instance };
  const emu = {
    child, port, instance, accessKeyId, accessKeySecret,
    endpoint: `http://127.0.0.1:${port}`,
    stderr: () => stderr,
    exited,
    post: (pathname, body, over = {}) => post(port, pathname, body, { ...creds, ...over }),
    async admin(action, body = {}) {
      const r = await post(port, `/_emulator/${action}`, JSON.stringify(body), creds);
      const text = r.body.toString('utf8');
      let json;
      try { json = JSON.parse(text); } catch { throw new Error(`admin ${action}: HTTP ${r.status}, non-JSON reply: ${text}`); }
      if (r.status !== 200) {
        const e = new Error(`admin ${action}: HTTP ${r.status} ${json.code}: ${json.message}`);
        e.status = r.status; e.code = json.code; e.reply = json;
        throw e;
      }
      return json;
    },
    client(over = {}) {
      const require = createRequire(path.resolve(here, '../package.json'));
      const TableStore = require('tablestore');
      return new TableStore.Client({
        accessKeyId, secretAccessKey: accessKeySecret, endpoint: `http://127.0.0.1:${port}`,
        instancename: instance, maxRetries: 0, ...over,
      });
    },
    async stop(timeoutMs = 5000) {
      if (child.exitCode !== null || child.signalCode !== null) return exited;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      const r = await exited;
      clearTimeout(timer);
      return r;
    },
  };
  return emu;
}

// The tablestore module from tests/node/node_modules.
export function tablestore() {
  const require = createRequire(path.resolve(here, '../package.json'));
  return require('tablestore');
}
