#!/usr/bin/env bash
# tls_cli.sh: HTTPS for real. A test CA made with openssl signs a certificate for 127.0.0.1;
# stunnel4 terminates TLS in front of lunnel-emulator. `--ca-file` with the test CA works
# (and keep-alive requests go through); the system CAs, a wrong CA, or a certificate for
# another host name fail at once with a clear certificate error (exit 1, never silently).
set -uo pipefail
. "$(dirname "$0")/lib/common.sh"
STUNNEL=$(command -v stunnel4 || command -v stunnel) || { echo "stunnel4 missing (scripts/deps)" >&2; exit 1; }

# --- certificates: CA1 signs 127.0.0.1, CA2 is unrelated, CA1 also signs "otherhost" only
mkca() { openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=$2" -keyout "$work/$1.key" -out "$work/$1.pem" 2>/dev/null; }
mkcert() { # name ca san
  openssl req -newkey rsa:2048 -nodes -subj "/CN=lunnel-test" -keyout "$work/$1.key" -out "$work/$1.csr" 2>/dev/null
  printf 'subjectAltName=%s\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n' "$3" >"$work/$1.ext"
  openssl x509 -req -in "$work/$1.csr" -CA "$work/$2.pem" -CAkey "$work/$2.key" -CAcreateserial -days 2 \
    -extfile "$work/$1.ext" -out "$work/$1.pem" 2>/dev/null
}
mkca ca1 "lunnel test CA" && mkca ca2 "unrelated CA" && mkcert srv ca1 "IP:127.0.0.1" && mkcert other ca1 "DNS:otherhost" \
  || { echo "openssl failed" >&2; exit 1; }

# --- emulator + two stunnels (right name, wrong name)
start_emulator
eport=$emu_port

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
start_stunnel() { # name cert -> sets tport
  local name=$1 cert=$2 p
  for _ in $(seq 20); do
    p=$((20000 + RANDOM % 40000))
    port_free "$p" || continue
    printf 'foreground = yes\npid =\n[tls]\naccept = 127.0.0.1:%s\nconnect = 127.0.0.1:%s\ncert = %s\nkey = %s\n' \
      "$p" "$eport" "$work/$cert.pem" "$work/$cert.key" >"$work/$name.conf"
    "$STUNNEL" "$work/$name.conf" >"$work/$name.log" 2>&1 &
    local pid=$!
    if "${HARNESS[@]}" wait-port --port "$p" --pid "$pid" --timeout-ms 5000 2>>"$work/$name.log"; then
      pids+=("$pid"); tport=$p; return 0
    fi
    kill "$pid" 2>/dev/null
  done
  echo "stunnel did not start: $(cat "$work/$name.log")" >&2
  exit 1
}
start_stunnel good srv; good=$tport
start_stunnel wrongname other; wrongname=$tport

export TABLESTORE_INSTANCE=lunnel TABLESTORE_ACCESS_KEY_ID=lunnel-ak TABLESTORE_ACCESS_KEY_SECRET=lunnel-secret
unset TABLESTORE_ENDPOINT LUNNEL_CA_FILE TABLESTORE_SECURITY_TOKEN LUNNEL_CREDENTIALS_COMMAND
"$POST" "http://127.0.0.1:$eport" /_emulator/load '{"table":"orders","rows":0}' >/dev/null || bad "admin load"

H=https://127.0.0.1:$good
expect 0 "https with the test CA" -- "$L" tunnel create --endpoint "$H" --ca-file "$work/ca1.pem" --table orders --tunnel t --type Stream
expect 0 "https list" -- "$L" tunnel list --endpoint "$H" --ca-file "$work/ca1.pem"
contains "$work/out" "orders" "list over https"
expect 0 "https describe via env CA" -- env LUNNEL_CA_FILE="$work/ca1.pem" "$L" tunnel describe --endpoint "$H" --table orders --tunnel t

start=$(date +%s)
expect 1 "system CAs do not know the test CA" -- "$L" tunnel list --endpoint "$H"
contains "$work/err" "TLS certificate verification failed" "system CA message"
expect 1 "wrong CA" -- "$L" tunnel list --endpoint "$H" --ca-file "$work/ca2.pem"
contains "$work/err" "TLS certificate verification failed" "wrong CA message"
contains "$work/err" "certificate" "wrong CA names the certificate"
[[ $(wc -l <"$work/err") == 1 ]] && ok || bad "TLS error not one line: $(cat "$work/err")"
echo "wrong CA reports: $(cat "$work/err")"
expect 1 "certificate for another name" -- "$L" tunnel list --endpoint "https://127.0.0.1:$wrongname" --ca-file "$work/ca1.pem"
contains "$work/err" "TLS certificate verification failed" "name mismatch message"
# Certificate failures are not retried: all three returned well inside one retry window.
took=$(( $(date +%s) - start ))
(( took < 10 )) && ok || bad "certificate failures took ${took}s (retried?)"

expect 2 "missing CA file" -- "$L" tunnel list --endpoint "$H" --ca-file "$work/nope.pem"
contains "$work/err" "--ca-file" "missing CA file message"

finish
