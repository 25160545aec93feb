// sink_redis.test.mjs: examples/to_redis.lua (lunnel.sinks.redis, hiredis) under `lunnel run`
// against lunnel-emulator and a real redis-server started here (free 127.0.0.1 port, scratch
// dir, persistence off, a password required), read back with redis-cli; the cases (converge;
// three kill -9; the server stopped mid-run) are tests/node/lib/sink_cases.mjs. Redis stops
// with SHUTDOWN SAVE so that its restart keeps what it had, like a persistent server.
import assert from 'node:assert/strict';
import { sinkCases } from './lib/sink_cases.mjs';
import { dumpSource, norm } from './lib/replica.mjs';
import { startRedis } from './lib/servers.mjs';

const SECRET = 'n0t-in-any-log'; // the password lunnel authenticates with (in the URL)

// The hashes under `<table>:` as Map "id|k" -> {field: "TYPE:text"}: the key is decoded from
// prefix + r:key() ("i<id>s<len>:<k>"); each value is read back as the type the source has
// for that column (Redis keeps text), so a wrong text form shows as a difference.
async function dump(rd, table, c, srcTable) {
  const prefix = `${table}:`;
  const src = await dumpSource(c, srcTable);
  const rows = new Map();
  for (const [kbuf, h] of rd.dump(`${prefix}*`)) {
    const m = kbuf.toString('utf8').slice(prefix.length).match(/^i(-?\d+)s(\d+):(.*)$/s);
    assert.ok(m, `key ${kbuf.toString('utf8')} has the documented form`);
    assert.equal(Buffer.byteLength(m[3]), Number(m[2]), 'the key string length');
    const key = `${m[1]}|${m[3]}`;
    const want = src.get(key) || {};
    const v = {};
    for (const [f, buf] of h) {
      const type = (want[f] || 'STRING:').split(':')[0];
      v[f] = norm(type, type === 'BINARY' ? buf.toString('hex') : buf.toString('utf8'));
    }
    rows.set(key, v);
  }
  return rows;
}

sinkCases({
  name: 'rd',
  label: 'Redis',
  script: 'examples/to_redis.lua',
  start: () => startRedis({ password: SECRET }),
  destroy: (rd) => rd.destroy(),
  custom: (rd, table) => ({ url: rd.url, prefix: `${table}:`, timeout: 2 }),
  dump,
  count: (rd, table) => Number(rd.cli('EVAL', `return #redis.call('KEYS', '${table}:*')`, '0').trim()),
  // the URL is shown with its password replaced
  failure: /lunnel\.sinks\.redis: redis:\/\/:\*\*\*@127\.0\.0\.1:\d+\/0: cannot connect: .*refused/i,
  stop: (rd) => rd.stop(),
  restart: (rd) => rd.start(),
  extra: (rows, rd, table) => {
    const id = [...rows.keys()].find((k) => rows.get(k).b);
    const [n, k] = id.split('|');
    assert.match(rd.cli('HGET', `${table}:i${n}s${k.length}:${k}`, 'b').trim(), /^(true|false)$/, 'booleans as true/false');
  },
});
