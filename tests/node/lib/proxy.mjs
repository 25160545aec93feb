// proxy.mjs: an HTTP proxy for `lunnel run` tests, in front of lunnel-emulator, that may
// rewrite replies (tests/node/run_channels_scale.test.mjs: a heartbeat listing 50,000
// channels; a heartbeat cut at a field boundary with the emulator's x-ots-contentmd5 kept).
//   const p = await startProxy(emu.port, (path, reply, n) => reply);   // n: per-path count
//   startRun({ ...emu, endpoint: p.endpoint }, ...)
// reply = { status, headers, body: Buffer }; return it (changed or not). Content-Length is
// recomputed from the returned body; every other header is passed as is.
import http from 'node:http';

export async function startProxy(targetPort, rewrite = (p, r) => r) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  const counts = {};
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (d) => chunks.push(d));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const headers = { ...req.headers };
      delete headers['content-length'];
      const up = http.request({ host: '127.0.0.1', port: targetPort, method: req.method, path: req.url, headers: { ...headers, 'content-length': body.length }, agent }, (ur) => {
        const parts = [];
        ur.on('data', (d) => parts.push(d));
        ur.on('end', () => {
          counts[req.url] = (counts[req.url] || 0) + 1;
          let reply = { status: ur.statusCode, headers: { ...ur.headers }, body: Buffer.concat(parts) };
          try {
            reply = rewrite(req.url, reply, counts[req.url]) || reply;
          } catch (e) {
            reply = { status: 500, headers: {}, body: Buffer.from(String(e)) };
          }
          const h = { ...reply.headers };
          delete h['content-length'];
          delete h['transfer-encoding'];
          h['content-length'] = reply.body.length;
          res.writeHead(reply.status, h);
          res.end(reply.body);
        });
      });
      up.on('error', () => { res.destroy(); });
      up.end(body);
    });
  });
  server.keepAliveTimeout = 30000;
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = server.address().port;
  return {
    port,
    endpoint: `http://127.0.0.1:${port}`,
    counts,
    async close() {
      server.closeAllConnections?.();
      await new Promise((resolve) => server.close(resolve));
      agent.destroy();
    },
  };
}
