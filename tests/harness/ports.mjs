// ports.mjs: TCP ports on 127.0.0.1 for servers a test starts that cannot pick their own
// (lunnel-emulator can: --listen 127.0.0.1:0 and its ready line), and the wait for a server
// without a ready line to accept connections.
import net from 'node:net';
import { waitFor } from './wait.mjs';

// A free TCP port on 127.0.0.1 (bound and released; the server binds it right after), or a
// port nobody listens on (every connect is refused).
export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
  });
}

// Resolves once 127.0.0.1:port accepts a TCP connection (a server started without a ready
// line, e.g. stunnel); throws once process `pid` (when given) has exited, or after timeoutMs.
export function waitForPort(port, { pid = null, timeoutMs = 10000, what = `127.0.0.1:${port} to accept connections` } = {}) {
  const alive = () => { try { process.kill(pid, 0); return true; } catch (e) { return e.code === 'EPERM'; } };
  const connects = () => new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port }, () => { s.destroy(); resolve(true); });
    s.on('error', () => resolve(false));
  });
  return waitFor(async () => {
    if (await connects()) return true;
    if (pid !== null && !alive()) throw new Error(`process ${pid} exited before ${what}`);
    return false;
  }, timeoutMs, what);
}
