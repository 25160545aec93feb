// sink_postgres.test.mjs: examples/to_postgres.lua (lunnel.sinks.postgres, libpq) under
// `lunnel run` against lunnel-emulator and a real PostgreSQL server started here (initdb +
// pg_ctl in a scratch dir on a free 127.0.0.1 port, as `nobody` when root). The source is
// written with the official Node.js SDK (base rows, then puts, partial updates with column
// deletes, deletes, columns that appear later) and read back with it; the destination is read
// with psql; they must be equal row by row and type by type:
//   1. a BaseAndStream run converges;
//   2. the same with three kill -9 of lunnel at seeded random moments;
//   3. PostgreSQL stopped mid-run: batches fail with the server's message (no password in
//      any log line), nothing is checkpointed past them (lunnel is killed while the server
//      is down and a new run resumes from the checkpoints), and once the server is back
//      everything arrives.
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { startEmulator } from './lib/emulator.mjs';
import { killAll, track } from './lib/ids.mjs';
import { createSource, norm, rng, waitConverged, writeBase, writeStream } from './lib/replica.mjs';
import { sourceDir, startRun, tempDir, waitFor } from './lib/run.mjs';
import { startPostgres } from './lib/servers.mjs';

const script = path.join(sourceDir, 'examples/to_postgres.lua');
const TYPES = { bigint: 'INTEGER', 'double precision': 'DOUBLE', text: 'STRING', boolean: 'BOOLEAN', bytea: 'BINARY' };

let emu, c, pg;
before(async () => {
  emu = await startEmulator();
  c = emu.client();
  pg = await startPostgres();
});
after(async () => { await killAll(); await emu?.stop(); pg?.destroy(); });

// The destination: Map "id|k" -> {column: "TYPE:text"}, TYPE from the column's SQL type;
// NULL columns are absent (as cells absent from a Tablestore row).
function dumpPg(table) {
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

function run(table, tunnel, create, extra = {}) {
  return track(startRun(emu, {
    table, tunnel, create, dir: tempDir(), script,
    custom: { dsn: pg.dsn, table: `${table}_copy`, create: true, ...extra },
  }));
}

test('BaseAndStream into PostgreSQL: the table equals the source, row by row and type by type', { timeout: 120000 }, async () => {
  const src = 'pg_src1';
  await createSource(c, src);
  await writeBase(c, src, 1000);
  const r = run(src, 'pg1', 'BaseAndStream');
  try {
    await waitFor(() => { try { return pg.psql('SELECT count(*) FROM pg_src1_copy')[0][0] === "1000"; } catch { return false; } }, 60000, '1000 base rows in PostgreSQL');
    await writeStream(c, src, { ops: 1000, idMax: 1100 });
    const rows = await waitConverged(c, src, async () => dumpPg('pg_src1_copy'), 60000);
    // the interesting cases are really there
    const types = Object.fromEntries(pg.psql("SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'pg_src1_copy'"));
    assert.deepEqual(types, { id: 'bigint', k: 'text', s: 'text', i: 'bigint', d: 'double precision', b: 'boolean', x: 'bytea', e1: 'text', e2: 'text', e3: 'text' });
    assert.deepEqual(pg.psql("SELECT string_agg(a.attname, ',' ORDER BY a.attnum) FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) WHERE i.indrelid = 'pg_src1_copy'::regclass AND i.indisprimary"), [['id,k']]);
    const all = [...rows.values()];
    assert.ok(all.some((v) => v.i && BigInt(v.i.slice(8)) > (1n << 53n)), 'an integer above 2^53');
    assert.ok(all.some((v) => v.s && v.s.includes("it's")) && all.some((v) => v.s && v.s.includes('line\nbreak')), 'quotes and newlines');
    assert.ok(all.some((v) => !v.d) && all.some((v) => v.d), 'deleted columns are NULL');
    assert.ok(rows.size < 1100 && rows.size > 700, `deletes applied (${rows.size} rows)`);
  } finally {
    const e = await r.stop('SIGTERM');
    assert.equal(e.code, 0, r.stderr().slice(-2000));
  }
});

test('three kill -9 of lunnel at seeded random moments: PostgreSQL still converges to the source', { timeout: 180000 }, async () => {
  const src = 'pg_src2';
  const rand = rng(20261206);
  await createSource(c, src);
  await writeBase(c, src, 1000, 3);
  let done = false;
  const writer = writeStream(c, src, { ops: 2000, idMax: 1100, seed: 4, stop: () => done });
  try {
    for (let kill = 0; kill < 3; kill++) {
      const r = run(src, 'pg2', 'BaseAndStream');
      await r.waitLog(/connected|channel/i, 30000).catch(() => {});
      const ms = 300 + Math.floor(rand() * 1500);
      await new Promise((res) => setTimeout(res, ms));
      const e = await r.stop('SIGKILL');
      assert.equal(e.signal, 'SIGKILL');
    }
  } finally {
    await writer;
    done = true;
  }
  const r = run(src, 'pg2', 'BaseAndStream');
  try {
    await waitConverged(c, src, async () => dumpPg('pg_src2_copy'), 90000);
  } finally {
    const e = await r.stop('SIGTERM');
    assert.equal(e.code, 0, r.stderr().slice(-2000));
  }
});

test('PostgreSQL stopped mid-run: batches fail with its message, nothing is checkpointed past them, all arrives after', { timeout: 180000 }, async () => {
  const src = 'pg_src3';
  await createSource(c, src);
  const secret = 'n0t-in-any-log';
  const dsn = pg.dsn.replace('lunnel@', `lunnel:${secret}@`); // trust auth: the password is never asked
  const r1 = track(startRun(emu, {
    table: src, tunnel: 'pg3', create: 'Stream', dir: tempDir(), script,
    custom: { dsn, table: 'pg_src3_copy', create: true, connect_timeout: 2 },
  }));
  await r1.waitLog(/connected|channel/i, 30000).catch(() => {});
  await writeStream(c, src, { ops: 300, idMax: 200, seed: 5 });
  await waitConverged(c, src, async () => dumpPg('pg_src3_copy'), 60000, 'first part');
  pg.stop('immediate');
  await writeStream(c, src, { ops: 300, idMax: 200, seed: 6 });
  // the batches fail with the server's (libpq's) message...
  await waitFor(() => /lunnel\.sinks\.postgres: pg_src3_copy: .*(connection|server)/i.test(r1.stderr()), 60000, 'a failed batch in the log');
  // ...long enough for several checkpoint intervals to pass
  await new Promise((res) => setTimeout(res, 1500));
  assert.ok(!r1.stderr().includes(secret), 'the DSN password never appears in the log');
  const e1 = await r1.stop('SIGKILL');
  assert.equal(e1.signal, 'SIGKILL');
  await pg.start();
  // a new run resumes from the checkpoints: had any been taken past the failed batches,
  // their changes would be missing now
  const r2 = track(startRun(emu, {
    table: src, tunnel: 'pg3', dir: tempDir(), script,
    custom: { dsn, table: 'pg_src3_copy', create: true },
  }));
  try {
    await waitConverged(c, src, async () => dumpPg('pg_src3_copy'), 90000, 'second part after the restart');
    assert.ok(!r2.stderr().includes(secret));
  } finally {
    const e = await r2.stop('SIGTERM');
    assert.equal(e.code, 0, r2.stderr().slice(-2000));
  }
});
