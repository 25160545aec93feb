// http_server.mjs: the local HTTP receiver of spec/sinks/http_spec.lua (node builtin http on
// 127.0.0.1, a free port). Prints "listening PORT" on stdout, then serves:
//   POST /ok             200, keeps the body
//   POST /flaky/N        503 for the first N requests to this path, then 200 (keeps bodies)
//   POST /down           500 always          POST /reject   400 always
//   POST /slow           answers after 3 s (for timeouts)
//   POST /_received      200, body = JSON {path: [bodies...]} of what was kept
//   POST /_quit          200, then exits. The process also exits after 60 s whatever happens.
import http from 'node:http';

const kept = {};
const hits = {};
const server = http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const body = Buffer.concat(chunks).toString('utf8');
    const p = req.url;
    hits[p] = (hits[p] || 0) + 1;
    const keep = () => { (kept[p] ||= []).push({ body, type: req.headers['content-type'], auth: req.headers['x-test-auth'] || null }); };
    const send = (st, b = '') => { res.writeHead(st, { 'content-type': 'text/plain' }); res.end(b); };
    if (p === '/ok') { keep(); return send(200, 'ok'); }
    const m = p.match(/^\/flaky\/(\d+)$/);
    if (m) { if (hits[p] <= Number(m[1])) return send(503, 'busy, try later'); keep(); return send(200, 'ok'); }
    if (p === '/down') return send(500, 'broken\nbackend');
    if (p === '/reject') return send(400, 'bad body');
    if (p === '/slow') { setTimeout(() => send(200, 'late'), 3000).unref(); return; }
    if (p === '/_received') return send(200, JSON.stringify({ kept, hits }));
    if (p === '/_quit') { send(200, 'bye'); server.close(); setTimeout(() => process.exit(0), 50); return; }
    send(404, 'no such path');
  });
});
server.listen(0, '127.0.0.1', () => { process.stdout.write(`listening ${server.address().port}\n`); });
setTimeout(() => process.exit(0), 60000).unref();
