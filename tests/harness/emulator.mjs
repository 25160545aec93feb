// emulator.mjs: start lunnel-emulator for a test, wait for its ready line, make signed calls
// (the admin API: POST /_emulator/<action>, JSON), hand out official-SDK clients, stop it.
//
//   import { startEmulator } from '../harness/index.mjs';
//   const emu = await startEmulator({ args: ['--partitions', '2'] });
//   emu.endpoint, emu.instance, emu.accessKeyId, emu.accessKeySecret, emu.port
//   const stats = await emu.admin('stats', {});
//   emu.client()            // a tablestore.Client for this emulator (needs tests/node/setup.sh)
//   emu.proc                // the process (harness/proc.mjs): waitLog(re), stderr(), pid
//   await emu.stop();       // SIGTERM, waits for exit (SIGKILL after 5 s)
import { createHash, createHmac } from 'node:crypto';
import { request } from 'node:http';
import { emulatorBinary, tablestore } from './paths.mjs';
import { startProcess } from './proc.mjs';

export { emulatorBinary, tablestore };

// The line lunnel-emulator prints on stdout once it accepts connections.
export const READY_LINE = /^lunnel-emulator listening on http:\/\/127\.0\.0\.1:(\d+) instance=(\S+)\n/;

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

// Starts lunnel-emulator on 127.0.0.1 with a free port (--listen 127.0.0.1:0) and resolves once
// its ready line names the port. logTo: output in files `${logTo}.out/.err` and detached (the
// CLI's emulators outlive it); otherwise in memory. lifetimeS: killed after that many seconds
// whatever happens to the test (run under coreutils' timeout, whose pid is then emu.pid).
// readyTimeoutMs only bounds a hung start (an exit fails at once): generous, since restoring a
// large --data-dir in a sanitizer build on a loaded machine takes tens of seconds.
export async function startEmulator({ args = [], instance = 'lunnel', accessKeyId = 'lunnel-ak', accessKeySecret = 'lunnel-secret', readyTimeoutMs = 60000, env = {}, logTo = null, lifetimeS = 0 } = {}) {
  const argv = [emulatorBinary(), '--listen', '127.0.0.1:0', '--instance', instance, '--access-key-id', accessKeyId, '--access-key-secret', accessKeySecret, ...args];
  if (lifetimeS > 0) argv.unshift('timeout', String(lifetimeS));
  const proc = startProcess(argv[0], argv.slice(1), { env, logTo, outputLimit: 65536, name: 'lunnel-emulator' });
  const ready = await proc.waitStdout(READY_LINE, readyTimeoutMs, 'its ready line').catch(async (e) => { await proc.stop('SIGKILL'); throw e; });
  const port = Number(ready[1]);
  const { child, exited } = proc;
  const creds = { accessKeyId, accessKeySecret, instance };
  const emu = {
    child, port, instance, accessKeyId, accessKeySecret,
    endpoint: `http://127.0.0.1:${port}`,
    pid: proc.pid, proc,
    stderr: proc.stderr,
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
      const TableStore = tablestore();
      return new TableStore.Client({
        accessKeyId, secretAccessKey: accessKeySecret, endpoint: `http://127.0.0.1:${port}`,
        instancename: instance, maxRetries: 0, ...over,
      });
    },
    // SIGTERM, then SIGKILL after timeoutMs; resolves {code, signal}
    stop: (timeoutMs = 5000) => proc.stop('SIGTERM', timeoutMs),
  };
  return emu;
}
