#!/usr/bin/env bash
# bench/sink_sql/run.sh BUILD_DIR: replication into a SQL server, end to end on this machine.
# Starts lunnel-emulator (16 partitions) and a real server in a scratch dir on a free
# 127.0.0.1 port: PostgreSQL (initdb + pg_ctl, as `nobody` when root) and, with
# SINKS="postgres mysql", MariaDB (mariadbd, own datadir). Pre-loads ROWS rows (default
# 1,000,000; integer key, COLUMNS string columns of VALUE_BYTES bytes), then REPEAT times
# (default 3) replicates a fresh BaseData tunnel into a fresh table with examples/to_<sink>.lua
# and --exit-when-done, under /usr/bin/time, checks the row count with the server's own client
# and prints rows per second into the destination (wall time of the whole `lunnel run`).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=$(cd "${1:-$root/build}" && pwd)
rows=${ROWS:-1000000}
cols=${COLUMNS:-3}
vb=${VALUE_BYTES:-32}
repeat=${REPEAT:-3}
sinks=${SINKS:-postgres mysql}
work=$(mktemp -d)
chmod 755 "$work"
asroot() { if [ "$(id -u)" -eq 0 ]; then runuser -u nobody -- "$@"; else "$@"; fi; }
pg_bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
cleanup() {
  kill "${emu_pid:-}" 2>/dev/null || true
  [ -d "$work/pg" ] && asroot "$pg_bin/pg_ctl" -D "$work/pg" -m immediate stop >/dev/null 2>&1 || true
  # the server itself (runuser, its parent when root, does not pass a TERM on)
  if [ -s "$work/my.pid" ]; then kill "$(cat "$work/my.pid")" 2>/dev/null || true; fi
  [ -n "${my_pid:-}" ] && wait "$my_pid" 2>/dev/null || true
  [ -n "${KEEP:-}" ] || rm -rf "$work"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

. "$root/bench/lib/emulator.sh"
bench_emulator "$work" --partitions 16
"$root/scripts/emulator-admin" load "{\"table\":\"bench\",\"rows\":$rows,\"columns\":$cols,\"value_bytes\":$vb,\"create\":true}" >"$work/load.json"
echo "loaded: $(cat "$work/load.json")"

start_postgres() {
  if [ "$(id -u)" -eq 0 ]; then chown nobody "$work"; fi
  asroot "$pg_bin/initdb" -D "$work/pg" -U lunnel --auth=trust -E UTF8 --locale=C --no-sync >/dev/null
  pg_port=$(free_port)
  # durability settings are the server defaults except fsync (a scratch server on a shared disk)
  asroot "$pg_bin/pg_ctl" -D "$work/pg" -l "$work/pg.log" -w -o "-p $pg_port -k $work -c listen_addresses=127.0.0.1 -c fsync=off" start >/dev/null
  dsn="postgresql://lunnel@127.0.0.1:$pg_port/postgres"
}
count_postgres() { "$pg_bin/psql" "$dsn" -X -A -t -c "SELECT count(*) FROM $1"; }

start_mysql() {
  mkdir -p "$work/my"
  # the server writes its pid, socket and log next to its datadir
  if [ "$(id -u)" -eq 0 ]; then chown nobody "$work"; chown -R nobody "$work/my"; fi
  my_port=$(free_port)
  asroot mariadb-install-db --no-defaults --datadir="$work/my" --auth-root-authentication-method=normal >/dev/null 2>&1
  asroot mariadbd --no-defaults --datadir="$work/my" --port="$my_port" --bind-address=127.0.0.1 \
    --socket="$work/my.sock" --pid-file="$work/my.pid" --skip-grant-tables --innodb-flush-log-at-trx-commit=2 \
    --innodb-buffer-pool-size=512M --log-error="$work/my.err" &
  my_pid=$!
  for _ in $(seq 1 200); do mariadb -h 127.0.0.1 -P "$my_port" -u root -e 'select 1' >/dev/null 2>&1 && break; sleep 0.1; done
  mariadb -h 127.0.0.1 -P "$my_port" -u root -e 'CREATE DATABASE IF NOT EXISTS bench'
  dsn="mysql://root@127.0.0.1:$my_port/bench"
}
count_mysql() { mariadb -h 127.0.0.1 -P "$my_port" -u root -N -B -e "SELECT count(*) FROM bench.$1"; }

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
for sink in $sinks; do
  "start_$sink"
  results=()
  for i in $(seq 1 "$repeat"); do
    table="copy_${sink}_$i"
    /usr/bin/time -f "%e %U %S %M" -o "$work/time.$sink.$i" \
      "$build/lunnel" run --endpoint "$TABLESTORE_ENDPOINT" --instance lunnel --table bench \
      --tunnel "bench_${sink}_$i" --create BaseData --exit-when-done --heartbeat-interval 0.2 --no-watch \
      --custom "{\"dsn\":\"$dsn\",\"table\":\"$table\",\"create\":true}" \
      ${LUNNEL_ARGS:-} "$root/examples/to_$sink.lua" 2>"$work/run.$sink.$i.err" || {
        echo "$sink run $i failed:" >&2; tail -20 "$work/run.$sink.$i.err" >&2; exit 1; }
    got=$("count_$sink" "$table")
    read -r wall user sys rss_kb <"$work/time.$sink.$i"
    line=$(awk -v n="$got" -v w="$wall" -v u="$user" -v s="$sys" -v r="$rss_kb" 'BEGIN {
      printf "rows=%d wall_s=%.2f rows_per_s=%.0f lunnel_cpu_s=%.2f peak_rss_mb=%.1f", n, w, n / w, u + s, r / 1024 }')
    echo "RESULT sink=$sink run=$i $line"
    results+=("$line")
    [ "$got" -eq "$rows" ] || { echo "$sink run $i: $got rows in the destination, want $rows" >&2; exit 1; }
  done
  for key in rows_per_s wall_s lunnel_cpu_s peak_rss_mb; do
    m=$(printf '%s\n' "${results[@]}" | grep -o "$key=[0-9.]*" | cut -d= -f2 | median)
    echo "MEDIAN sink=$sink $key=$m"
  done
done
