// emulator_flood.test.mjs: lunnel-emulator stays responsive under a bounded loopback flood of
// idle and half-open connections and gives the memory back afterwards. 4,500 idle sockets
// (past the 4,096 connection limit: the least recently active waiting ones are closed for new
// ones) and 1,000 half-open requests (complete head, 64 KiB of a 1 MiB body, then silence)
// are opened; while they are held, signed requests on fresh connections answer within 100 ms
// (the median and three in four, allowing for the shared cores; none beyond 5 s; requests
// racing the connect bursts themselves are reported, not asserted: the cores are then busy
// with the flood's own bytes). The stalled bodies get 408 OTSRequestTimeout after --body-timeout, and once the
// flood is gone the resident size returns to within 24 MiB of where it started.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { after, before, test } from 'node:test';

import { emulatorBinary, post, startEmulator, waitFor as harnessWaitFor } from '../harness/index.mjs';

// Both processes hold every socket: on a machine with a low descriptor limit the flood (and
// the connection limit, so eviction is still exercised) shrinks to fit.
const fdLimit = (() => {
  const m = readFileSync('/proc/self/limits', 'utf8').match(/Max open files\s+(\d+)/);
  return m ? Number(m[1]) : 1024;
})();
const SCALE = Math.min(1, (fdLimit - 200) / 6000);
const IDLE = Math.floor(4500 * SCALE);
const HALF_OPEN = Math.floor(1000 * SCALE / 250) * 250 || 250;
const MAX_CONNECTIONS = Math.floor(4096 * SCALE);
const BODY_SENT = 64 * 1024;

const rssMiB = (pid) => {
  const m = readFileSync(`/proc/${pid}/status`, 'utf8').match(/VmRSS:\s+(\d+) kB/);
  return Number(m[1]) / 1024;
};

// The harness's waitFor (polled every 100 ms), in this file's argument order.
const waitFor = (what, fn, timeoutMs) => harnessWaitFor(fn, timeoutMs, what, { intervalMs: 100 });

// Opens one socket; resolves once connected. Errors (a server-side close) are ignored.
function open(port, onConnect) {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port }, () => { onConnect?.(s); resolve(s); });
    s.on('error', () => resolve(s));
    s.on('data', () => {});
  });
}

let emu;
const sockets = [];
before(async () => {
  emu = await startEmulator({ args: ['--header-timeout', '3', '--body-timeout', '3', '--idle-timeout', '60', '--max-connections', String(MAX_CONNECTIONS)] });
});
after(async () => {
  for (const s of sockets) s.destroy();
  const r = await emu.stop();
  assert.equal(r.code, 0, `emulator exit: ${JSON.stringify(r)}; stderr: ${emu.stderr().slice(-2000)}`);
});

// Times one signed request on a fresh connection (Connection: close via agent: false).
async function timedRequest() {
  const t0 = process.hrtime.bigint();
  const r = await post(emu.port, '/ListTable', Buffer.alloc(0), { accessKeyId: emu.accessKeyId, accessKeySecret: emu.accessKeySecret, instance: emu.instance }, 5000);
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  assert.equal(r.status, 200, r.body.toString('latin1'));
  return ms;
}

test('idle and half-open floods: signed requests answer within 100 ms, memory comes back', { timeout: 120000 }, async () => {
  const pid = emu.child.pid;
  await timedRequest();
  const base = rssMiB(pid);
  const lat = []; // requests while the flood is held
  const burst = []; // requests right after each batch of connects (reported, not asserted)

  // idle sockets, in bounded parallel batches, with a signed request after each batch
  for (let i = 0; i < IDLE; i += 500) {
    const batch = await Promise.all(Array.from({ length: Math.min(500, IDLE - i) }, () => open(emu.port)));
    sockets.push(...batch);
    burst.push(await timedRequest());
  }
  for (let i = 0; i < 10; i++) lat.push(await timedRequest());
  const afterIdle = (await emu.admin('stats')).connections;
  assert.ok(afterIdle.open <= afterIdle.max, `open ${afterIdle.open} within max ${afterIdle.max}`);
  assert.ok(afterIdle.evicted >= IDLE - afterIdle.max, `evicted ${afterIdle.evicted}`);

  // half-open requests: a signed head announcing 1 MiB, 64 KiB of it, then nothing
  const head = `POST /PutRow HTTP/1.1\r\nHost: x\r\nContent-Length: ${1 << 20}\r\n\r\n`;
  const chunk = Buffer.alloc(BODY_SENT, 0x61);
  for (let i = 0; i < HALF_OPEN; i += 250) {
    const batch = await Promise.all(Array.from({ length: 250 }, () => open(emu.port, (s) => { s.write(head); s.write(chunk); })));
    sockets.push(...batch);
    burst.push(await timedRequest());
  }
  const during = await waitFor('the half-open bodies to be buffered', async () => {
    const c = (await emu.admin('stats')).connections;
    return c.buffered_bytes >= HALF_OPEN * BODY_SENT * 0.9 ? c : null;
  }, 20000);
  const peak = rssMiB(pid);
  for (let i = 0; i < 10; i++) lat.push(await timedRequest());

  // the stalled bodies time out with 408 and their buffers go (the stats request's own
  // buffer aside)
  const timedOut = await waitFor('the stalled bodies to time out and their buffers to go', async () => {
    const c = (await emu.admin('stats')).connections;
    return c.buffered_bytes <= 8192 ? c : null;
  }, 30000);
  assert.ok(timedOut.body_timeouts >= HALF_OPEN * 0.9, `408s for the stalled bodies: ${JSON.stringify(timedOut)}`);
  for (const s of sockets) s.destroy();
  sockets.length = 0;
  await waitFor('connections to close', async () => (await emu.admin('stats')).connections.open <= 2, 20000);
  let end = 0;
  // AddressSanitizer's allocator keeps freed memory in quarantine: resident size says nothing
  // about the emulator there (its leak check still runs at exit)
  const asan = readFileSync(emulatorBinary()).includes('__asan_init');
  if (asan) {
    end = rssMiB(pid);
    console.log('# sanitizer build: resident memory after the flood not checked');
  } else {
    await waitFor('resident memory to come back', async () => {
      end = rssMiB(pid);
      return end < base + 24;
    }, 30000).catch((e) => { throw new Error(`${e.message}: base ${base.toFixed(1)} MiB, peak ${peak.toFixed(1)}, now ${end.toFixed(1)}`); });
  }
  for (let i = 0; i < 5; i++) lat.push(await timedRequest());

  lat.sort((a, b) => a - b);
  burst.sort((a, b) => a - b);
  console.log(`flood: ${lat.length} signed requests, median ${lat[lat.length >> 1].toFixed(1)} ms, max ${lat[lat.length - 1].toFixed(1)} ms ` +
    `(right after connect bursts: median ${burst[burst.length >> 1].toFixed(1)} ms, max ${burst[burst.length - 1].toFixed(1)} ms); ` +
    `rss base ${base.toFixed(1)} MiB, peak ${peak.toFixed(1)} MiB (buffered ${(during.buffered_bytes / 1048576).toFixed(1)} MiB), after ${end.toFixed(1)} MiB; ` +
    `evicted ${timedOut.evicted}, body timeouts ${timedOut.body_timeouts}`);
  assert.ok(peak > base + (HALF_OPEN * BODY_SENT / 1048576) * 0.4, `the flood was real: rss ${base.toFixed(1)} -> ${peak.toFixed(1)} MiB`);
  // Before the connection bounds, requests past ~4,100 idle sockets were never answered. On
  // the two shared cores (ctest runs two suites at once, other builds run beside it) a sample
  // can catch the emulator or this test descheduled, so the bound is on three in four and the
  // median; every request must still be answered within 5 s.
  const within = lat.filter((x) => x < 100).length;
  const all = lat.map((x) => x.toFixed(0)).join(' ');
  assert.ok(within >= Math.ceil(lat.length * 0.75), `signed requests within 100 ms: ${within}/${lat.length}: ${all}`);
  assert.ok(lat[lat.length >> 1] < 100, `median within 100 ms: ${all}`);
  assert.ok(lat[lat.length - 1] < 5000, `every signed request within 5 s: ${all}`);
});
