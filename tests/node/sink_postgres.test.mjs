// sink_postgres.test.mjs: examples/to_postgres.lua (lunnel.sinks.postgres, libpq) under
// `lunnel run` against lunnel-emulator and a real PostgreSQL server started here (initdb +
// pg_ctl in a scratch dir on a free 127.0.0.1 port, as `nobody` when root), read back with
// psql; the cases (converge; three kill -9; the server stopped mid-run) are
// tests/node/lib/sink_cases.mjs.
import assert from 'node:assert/strict';
import { sinkCases } from './lib/sink_cases.mjs';
import { norm } from './lib/replica.mjs';
import { startPostgres } from './lib/servers.mjs';

const TYPES = { bigint: 'INTEGER', 'double precision': 'DOUBLE', text: 'STRING', boolean: 'BOOLEAN', bytea: 'BINARY' };

// The destination: Map "id|k" -> {column: "TYPE:text"}, TYPE from the column's SQL type;
// NULL columns are absent (as cells absent from a Tablestore row).
function dump(pg, table) {
  const cols = pg.psql(`SELECT column_name, data_type FROM information_schema.columns WHERE table_name = '${table}' ORDER BY ordinal_position`);
  if (cols.length === 0) return new Map();
  const fields = cols.map(([n]) => `'${n}', "${n}"::text`).join(', ');
  const rows = new Map();
  for (const [line] of pg.psql(`SELECT json_build_object(${fields}) FROM "${table}"`)) {
    const o = JSON.parse(line);
    const v = {};
    for (const [n, type] of cols) {
      if (n === 'id' || n === 'k' || o[n] === null) continue;
      const t = TYPES[type];
      assert.ok(t, `column ${n} has unexpected type ${type}`);
      v[n] = norm(t, t === 'BINARY' ? o[n].replace(/^\\x/, '') : o[n]);
    }
    rows.set(`${o.id}|${o.k}`, v);
  }
  return rows;
}

sinkCases({
  name: 'pg',
  label: 'PostgreSQL',
  script: 'examples/to_postgres.lua',
  start: startPostgres,
  destroy: (pg) => pg.destroy(),
  // trust authentication: a password in the DSN is never asked for, so it can be checked
  // to stay out of every log line
  custom: (pg, table, { secret } = {}) => ({ dsn: secret ? pg.dsn.replace('lunnel@', `lunnel:${secret}@`) : pg.dsn, table, create: true, connect_timeout: 2 }),
  dump: (pg, table) => dump(pg, table),
  count: (pg, table) => Number(pg.psql(`SELECT count(*) FROM "${table}"`)[0][0]),
  failure: /lunnel\.sinks\.postgres: pg_copy3: .*(connection|server)/i,
  stop: (pg) => pg.stop('immediate'),
  restart: (pg) => pg.start(),
  extra: (rows, pg, table) => {
    const types = Object.fromEntries(pg.psql(`SELECT column_name, data_type FROM information_schema.columns WHERE table_name = '${table}'`));
    assert.deepEqual(types, { id: 'bigint', k: 'text', s: 'text', i: 'bigint', d: 'double precision', b: 'boolean', x: 'bytea', e1: 'text', e2: 'text', e3: 'text' });
    assert.deepEqual(pg.psql(`SELECT string_agg(a.attname, ',' ORDER BY a.attnum) FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) WHERE i.indrelid = '"${table}"'::regclass AND i.indisprimary`), [['id,k']]);
  },
});
