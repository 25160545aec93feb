// sink_mysql.test.mjs: examples/to_mysql.lua (lunnel.sinks.mysql, libmariadb) under
// `lunnel run` against lunnel-emulator and a real MariaDB server started here (mariadbd with
// its own datadir in a scratch dir on a free 127.0.0.1 port, as `nobody` when root), read
// back with the mariadb client; the cases (converge; three kill -9; the server stopped
// mid-run) are tests/node/lib/sink_cases.mjs.
import assert from 'node:assert/strict';
import { sinkCases } from './lib/sink_cases.mjs';
import { norm } from './lib/replica.mjs';
import { startMariadb } from './lib/servers.mjs';

const TYPES = { bigint: 'INTEGER', double: 'DOUBLE', longtext: 'STRING', varchar: 'STRING', tinyint: 'BOOLEAN', longblob: 'BINARY', varbinary: 'BINARY' };

// The destination: Map "id|k" -> {column: "TYPE:text"}, TYPE from the column's SQL type
// (BOOLEAN is tinyint(1): 0/1 read back as false/true); NULL columns are absent.
function dump(my, table) {
  const cols = my.sql(`SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = 'lunnel' AND table_name = '${table}' ORDER BY ordinal_position`);
  if (cols.length === 0) return new Map();
  const fields = cols.map(([n, type]) => `'${n}', ${TYPES[type] === 'BINARY' ? `HEX(\`${n}\`)` : `CAST(\`${n}\` AS CHAR)`}`).join(', ');
  const rows = new Map();
  for (const [line] of my.sql(`SELECT JSON_OBJECT(${fields}) FROM \`${table}\``)) {
    const o = JSON.parse(line);
    const v = {};
    for (const [n, type] of cols) {
      if (n === 'id' || n === 'k' || o[n] === null) continue;
      const t = TYPES[type];
      assert.ok(t, `column ${n} has unexpected type ${type}`);
      const text = t === 'BINARY' ? o[n].toLowerCase() : t === 'BOOLEAN' ? String(o[n] === '1') : o[n];
      v[n] = norm(t, text);
    }
    rows.set(`${o.id}|${o.k}`, v);
  }
  return rows;
}

sinkCases({
  name: 'my',
  label: 'MariaDB (MySQL protocol)',
  script: 'examples/to_mysql.lua',
  start: startMariadb,
  destroy: (my) => my.destroy(),
  // grant tables are skipped: a password in the DSN is not checked, so it can be checked to
  // stay out of every log line
  custom: (my, table, { secret } = {}) => ({ dsn: secret ? my.dsn.replace('lunnel@', `lunnel:${secret}@`) : my.dsn, table, create: true, connect_timeout: 2 }),
  dump: (my, table) => dump(my, table),
  count: (my, table) => Number(my.sql(`SELECT count(*) FROM \`${table}\``)[0][0]),
  failure: /lunnel\.sinks\.mysql: my_copy3: .*(connect|server|gone)/i,
  stop: (my) => my.stop(),
  restart: (my) => my.start(),
  extra: (rows, my, table) => {
    const types = Object.fromEntries(my.sql(`SELECT column_name, column_type FROM information_schema.columns WHERE table_schema = 'lunnel' AND table_name = '${table}'`));
    assert.deepEqual(types, { id: 'bigint(20)', k: 'varchar(766)', s: 'longtext', i: 'bigint(20)', d: 'double', b: 'tinyint(1)', x: 'longblob', e1: 'longtext', e2: 'longtext', e3: 'longtext' });
  },
});
