// servers.mjs: the destination servers of the sink tests, each started for real from its
// Debian package on a free 127.0.0.1 port in a scratch directory, and stopped after:
// PostgreSQL (initdb + pg_ctl, as the unprivileged user `nobody` when run as root, since
// PostgreSQL refuses to run as root), MariaDB (mariadbd with its own datadir) and Redis
// (redis-server, persistence off). Results are read back with each server's own client
// (psql, mariadb, redis-cli). Nothing here waits on time alone: readiness is polled.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort, poll } from '../../harness/index.mjs';

const asRoot = process.getuid && process.getuid() === 0;

function scratch(prefix) {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  if (asRoot) fs.chownSync(d, 65534, 65534);
  return d;
}

function pgBin(name) {
  const base = '/usr/lib/postgresql';
  const versions = fs.existsSync(base) ? fs.readdirSync(base).sort((a, b) => Number(b) - Number(a)) : [];
  for (const v of versions) {
    const p = path.join(base, v, 'bin', name);
    if (fs.existsSync(p)) return p;
  }
  throw new Error(`PostgreSQL's ${name} not found under ${base}: install the Debian package postgresql (scripts/deps)`);
}

// Runs a PostgreSQL server program as `nobody` when we are root.
function pgRun(args, opts = {}) {
  const argv = asRoot ? ['runuser', '-u', 'nobody', '--', ...args] : args;
  return execFileSync(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], cwd: '/', ...opts }).toString();
}

// Starts PostgreSQL; resolves {port, dsn, psql(sql) -> rows (arrays of strings), stop(), start()}.
export async function startPostgres() {
  const dir = scratch('lunnel-pg-');
  const data = path.join(dir, 'data');
  pgRun([pgBin('initdb'), '-D', data, '-U', 'lunnel', '--auth=trust', '-E', 'UTF8', '--locale=C', '--no-sync']);
  const port = await freePort();
  const pg = {
    dir, port,
    dsn: `postgresql://lunnel@127.0.0.1:${port}/postgres`,
    // fsync=off only skips flushes to the disk (a server crash keeps what the OS has);
    // synchronous_commit stays on: the stop-mid-run case kills the server (immediate mode)
    // and a COMMIT it acknowledged must survive that, as lunnel checkpoints past it
    async start() {
      pgRun([pgBin('pg_ctl'), '-D', data, '-l', path.join(dir, 'log'), '-w', '-t', '60', '-o',
        `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=50`, 'start']);
      await poll(() => spawnSync(pgBin('pg_isready'), ['-h', '127.0.0.1', '-p', String(port)]).status === 0, 30000, 'pg_isready');
    },
    stop(mode = 'fast') {
      try { pgRun([pgBin('pg_ctl'), '-D', data, '-m', mode, '-w', '-t', '60', 'stop']); } catch (e) { /* already stopped */ }
    },
    // Rows of a query, read with psql (unaligned, tab-separated; NULL shown as \N).
    psql(sql) {
      const out = execFileSync(pgBin('psql'), ['-h', '127.0.0.1', '-p', String(port), '-U', 'lunnel', '-d', 'postgres',
        '-X', '-q', '-A', '-t', '-F', '\t', '-P', 'null=\\N', '-v', 'ON_ERROR_STOP=1', '-c', sql], { stdio: ['ignore', 'pipe', 'pipe'] }).toString();
      return out.split('\n').filter((l) => l !== '').map((l) => l.split('\t'));
    },
    destroy() {
      pg.stop('immediate');
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
  await pg.start();
  return pg;
}

// Starts redis-server with persistence off (no RDB save points, no AOF); stop() saves one
// RDB snapshot on the way down (SHUTDOWN SAVE) so start() brings the data back, like a
// restart of a persistent server. With password, clients must AUTH (requirepass).
// Resolves {port, url, cli(...args) -> stdout, stop(), start()}.
export async function startRedis({ password } = {}) {
  const dir = scratch('lunnel-redis-');
  const port = await freePort();
  let child = null;
  const auth = password ? ['--no-auth-warning', '-a', password] : [];
  const cli = (...args) => execFileSync('redis-cli', ['-h', '127.0.0.1', '-p', String(port), ...auth, ...args], { stdio: ['ignore', 'pipe', 'pipe'] }).toString();
  const rd = {
    dir, port,
    url: `redis://${password ? `:${password}@` : ''}127.0.0.1:${port}/0`,
    cli,
    async start() {
      child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
        '--dir', dir, '--dbfilename', 'dump.rdb', '--daemonize', 'no', '--logfile', path.join(dir, 'log'),
        ...(password ? ['--requirepass', password] : [])], { stdio: 'ignore' });
      await poll(() => { try { return cli('PING').trim() === 'PONG'; } catch { return false; } }, 30000, 'redis-server PING');
    },
    async stop() {
      if (!child) return;
      const c = child;
      child = null;
      const gone = new Promise((res) => c.on('exit', res));
      try { cli('SHUTDOWN', 'SAVE'); } catch { /* the connection closes as it exits */ }
      await gone;
    },
    // Every key matching pattern: Map key -> Map field -> value (Buffers), read by one
    // server-side script (hex on the wire so any byte survives redis-cli's output).
    dump(pattern) {
      const script = "local out = {} for _, k in ipairs(redis.call('KEYS', ARGV[1])) do "
        + "local h = redis.call('HGETALL', k) local parts = {} "
        + "for i = 1, #h do parts[i] = (h[i]:gsub('.', function(c) return string.format('%02x', c:byte()) end)) end "
        + "out[#out + 1] = (k:gsub('.', function(c) return string.format('%02x', c:byte()) end)) .. '=' .. table.concat(parts, ',') end return out";
      const text = cli('--raw', 'EVAL', script, '0', pattern);
      const rows = new Map();
      for (const line of text.split('\n')) {
        if (!line) continue;
        const [k, fields] = line.split('=');
        const parts = fields ? fields.split(',') : [];
        const h = new Map();
        for (let i = 0; i + 1 < parts.length; i += 2) h.set(Buffer.from(parts[i], 'hex').toString('utf8'), Buffer.from(parts[i + 1], 'hex'));
        rows.set(Buffer.from(k, 'hex'), h);
      }
      return rows;
    },
    async destroy() {
      if (child) { child.kill('SIGKILL'); await new Promise((res) => child.on('exit', res)); child = null; }
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
  await rd.start();
  return rd;
}

// Starts MariaDB (mariadbd, its own datadir made by mariadb-install-db, grant tables skipped:
// any user connects, passwords are not checked) as `nobody` when root. Resolves {port, dsn,
// sql(query) -> rows (arrays of strings), stop(), start(), destroy()}; database `lunnel`.
export async function startMariadb() {
  const dir = scratch('lunnel-my-');
  const data = path.join(dir, 'data');
  // as `nobody` through spawn's uid/gid (not runuser), so the server is our direct child
  const ids = asRoot ? { uid: 65534, gid: 65534 } : {};
  execFileSync('mariadb-install-db', ['--no-defaults', `--datadir=${data}`, '--auth-root-authentication-method=normal', '--skip-test-db'],
    { stdio: ['ignore', 'pipe', 'pipe'], cwd: '/', ...ids });
  const port = await freePort();
  let child = null;
  const client = (args) => execFileSync('mariadb', ['-h', '127.0.0.1', '-P', String(port), '-u', 'root', '--protocol=TCP', ...args], { stdio: ['ignore', 'pipe', 'pipe'] }).toString();
  const my = {
    dir, port,
    dsn: `mysql://lunnel@127.0.0.1:${port}/lunnel`,
    async start() {
      const argv = (['mariadbd', '--no-defaults', `--datadir=${data}`, `--port=${port}`, '--bind-address=127.0.0.1',
        `--socket=${path.join(dir, 'sock')}`, `--pid-file=${path.join(dir, 'pid')}`, '--skip-grant-tables', '--skip-name-resolve',
        '--innodb-buffer-pool-size=64M', '--innodb-log-file-size=16M', '--innodb-flush-log-at-trx-commit=2', '--skip-log-bin',
        `--log-error=${path.join(dir, 'err.log')}`]);
      child = spawn(argv[0], argv.slice(1), { stdio: 'ignore', cwd: '/', ...ids });
      await poll(() => { try { client(['-e', 'SELECT 1']); return true; } catch { return false; } }, 60000, 'mariadbd ready');
      client(['-e', 'CREATE DATABASE IF NOT EXISTS lunnel']);
    },
    async stop() {
      if (!child) return;
      const c = child;
      child = null;
      const gone = new Promise((res) => c.on('exit', res));
      c.kill('SIGTERM');
      await gone;
    },
    // Rows of a query (tab-separated, raw: no escaping of the values; NULL as "NULL").
    sql(query) {
      return client(['-N', '-B', '-r', '-D', 'lunnel', '-e', query]).split('\n').filter((l) => l !== '').map((l) => l.split('\t'));
    },
    async destroy() {
      if (child) { child.kill('SIGKILL'); await new Promise((res) => child.on('exit', res)); child = null; }
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
  await my.start();
  return my;
}
