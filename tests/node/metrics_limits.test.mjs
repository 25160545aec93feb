// metrics_limits.test.mjs: the metrics endpoint under fd exhaustion. `lunnel run` runs with
// `ulimit -n 30`; the test holds 60 idle connections to the metrics port, so accept() fails
// with EMFILE once the process is out of fds. The listener must pause with a backoff (one
// log line per step) instead of spinning on a socket that stays readable: lunnel's CPU over
// 3 s stays under 15% (it spun at 70% before), and /metrics answers again once the
// connections are gone.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { test } from 'node:test';
import {
  startEmulator, I, createTable, lunnelBinary, putRow, startRun, tempDir, waitFor
} from '../harness/index.mjs';

function get(port, p, timeoutMs = 3000) {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: p, timeout: timeoutMs }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode }));
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${p} timed out`)));
    req.on('error', reject);
  });
}

function cpuSeconds(pid) {
  const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return (Number(rest[11]) + Number(rest[12])) / 100; // utime + stime, clock ticks
}

test('accept() failing with EMFILE: the metrics listener backs off, no spin, recovers', { timeout: 90000 }, async () => {
  const emu = await startEmulator({ args: ['--partitions', '1'] });
  const dir = tempDir();
  const wrapper = path.join(dir, 'lunnel-ulimit.sh');
  fs.writeFileSync(wrapper, `#!/bin/sh\nulimit -n 30\nexec ${JSON.stringify(lunnelBinary())} "$@"\n`, { mode: 0o755 });
  const saved = process.env.LUNNEL_BIN;
  process.env.LUNNEL_BIN = wrapper;
  const socks = [];
  let r;
  try {
    const c = emu.client();
    await createTable(c, 'mfd');
    await putRow(c, 'mfd', 1, 'p', { v: I(1) });
    const portFile = path.join(dir, 'metrics.port');
    r = startRun(emu, { table: 'mfd', tunnel: 'mfd', create: 'BaseAndStream', dir,
      args: ['--metrics-listen', '127.0.0.1:0', '--metrics-port-file', portFile] });
    const port = Number(await waitFor(() => fs.existsSync(portFile) && fs.readFileSync(portFile, 'utf8').trim(), 15000, 'metrics port'));
    assert.equal((await get(port, '/healthz')).status, 200);
    for (let i = 0; i < 60; i++) {
      const s = net.connect(port, '127.0.0.1');
      s.on('error', () => {});
      socks.push(s);
    }
    await r.waitLog(/accept failed, pausing the listener error="Too many open files" retry_s=0\.1/, 10000);
    const c0 = cpuSeconds(r.child.pid), t0 = Date.now();
    await new Promise((res) => setTimeout(res, 3000));
    const share = (cpuSeconds(r.child.pid) - c0) / ((Date.now() - t0) / 1000);
    const steps = (r.stderr().match(/accept failed, pausing the listener/g) || []).length;
    console.log(`# EMFILE: lunnel CPU ${(share * 100).toFixed(1)}% over 3 s, ${steps} backoff log lines`);
    assert.ok(share < 0.15, `no busy loop on EMFILE: ${(share * 100).toFixed(1)}% CPU`);
    assert.ok(steps <= 8, `one line per backoff step, not per attempt: ${steps}`);
    for (const s of socks) s.destroy();
    socks.length = 0;
    await waitFor(async () => (await get(port, '/metrics').catch(() => ({ status: 0 }))).status === 200, 20000, '/metrics again');
  } finally {
    for (const s of socks) s.destroy();
    if (saved === undefined) delete process.env.LUNNEL_BIN; else process.env.LUNNEL_BIN = saved;
    if (r) await r.stop();
    await emu.stop();
  }
});
