#!/usr/bin/env bash
# cli_tunnel.sh: `lunnel tunnel ...` end to end against lunnel-emulator on 127.0.0.1:<free>:
# create/list/describe/rpo/schedule/delete round trip, table and JSON output, one-line
# errors with server code + request id, exit statuses (0 ok, 1 runtime, 2 usage, 3 auth,
# 4 expired, 5 not found), two injected 503s retried, a 403 reported once without retry.
set -uo pipefail
. "$(dirname "$0")/lib/common.sh"

[[ -x $B/lunnel-emulator && -x $L ]] || { echo "needs $B/lunnel and $B/lunnel-emulator" >&2; exit 1; }
start_emulator
E=http://127.0.0.1:$emu_port
export TABLESTORE_ENDPOINT=$E TABLESTORE_INSTANCE=lunnel
export TABLESTORE_ACCESS_KEY_ID=lunnel-ak TABLESTORE_ACCESS_KEY_SECRET=lunnel-secret
unset TABLESTORE_SECURITY_TOKEN LUNNEL_CREDENTIALS_COMMAND LUNNEL_CA_FILE
"$POST" "$E" /_emulator/load '{"table":"orders","rows":3}' >/dev/null || bad "admin load"

# create, then create again (OTSTunnelExist: runtime failure, code + request id on one line)
expect 0 "create" -- "$L" tunnel create --table orders --tunnel cdc --type BaseAndStream
contains "$work/out" "created tunnel cdc" "create output"
id=$(sed -nE 's/.*id ([0-9a-f-]+)$/\1/p' "$work/out")
[[ -n $id ]] && ok || bad "no tunnel id in $(cat "$work/out")"
expect 1 "create existing" -- "$L" tunnel create --table orders --tunnel cdc --type BaseAndStream
contains "$work/err" "OTSTunnelExist (HTTP 409)" "exist error code"
contains "$work/err" "request id " "exist error request id"
[[ $(wc -l <"$work/err") == 1 ]] && ok || bad "error is not one line: $(cat "$work/err")"
expect 0 "create stream with times" -- "$L" tunnel create --table orders --tunnel s1 --type Stream \
  --start-time 2026-01-01T00:00:00Z --end-time 1798761600000 --json
contains "$work/out" '"tunnel":"s1"' "create json"

# list (table and JSON)
expect 0 "list" -- "$L" tunnel list
contains "$work/out" "^TUNNEL " "list header"
contains "$work/out" "$id" "list has id"
expect 0 "list --json --table" -- "$L" tunnel list --table orders --json
contains "$work/out" "\"tunnel_id\":\"$id\"" "list json"

# describe: info + channel table
expect 0 "describe" -- "$L" tunnel describe --table orders --tunnel cdc
contains "$work/out" "stage     " "describe stage"
contains "$work/out" "^CHANNEL .*TYPE .*STATUS .*CLIENT .*RPO" "describe channel header"
contains "$work/out" "BaseData_" "describe base channel"
expect 0 "describe --json" -- "$L" tunnel describe --table orders --tunnel cdc --json
contains "$work/out" '"channels":\[{"channel_id"' "describe json"

# rpo and schedule resolve the id by name
# --json: the raw documents in the Go SDK's shape ({tunnel: {channel: RpoLatency}}, {tunnel: TunnelRpoLatency})
stage=$(grep -o '"stage":"[^"]*"' <("$L" tunnel describe --table orders --tunnel cdc --json) | cut -d'"' -f4)
expect 0 "rpo" -- "$L" tunnel rpo --table orders --tunnel cdc --json
contains "$work/out" "\"tunnel_id\":\"$id\"" "rpo json"
contains "$work/out" "\"rpo_infos\":{\"$id\":{\"BaseData_[^\"]*\":{\"ChannelTyp\":\"BaseData\",\"Status\":\"WAIT\",\"TotalCount\":0," "rpo json channel shape"
contains "$work/out" "\"tunnel_rpo_infos\":{\"$id\":{\"Status\":\"$stage\",\"TotalCount\":0," "rpo json tunnel shape"
chan=$(grep -o '"channel_id":"[^"]*"' <("$L" tunnel describe --table orders --tunnel cdc --json) | head -1 | cut -d'"' -f4)
expect 0 "schedule" -- "$L" tunnel schedule --tunnel-id "$id" --channel "$chan" --status OPEN
contains "$work/out" "status OPEN requested" "schedule output"
# the table: one row per channel with describe's type and status (nothing consumed: count 0,
# no RPO/access time), then the tunnel line
desc=$("$L" tunnel describe --table orders --tunnel cdc --json)
expect 0 "rpo table" -- "$L" tunnel rpo --table orders --tunnel cdc
contains "$work/out" "^tunnel $id\$" "rpo table tunnel id"
contains "$work/out" "^CHANNEL  *TYPE  *STATUS  *TOTAL_COUNT  *RPO_TIME  *ACCESS_TIME\$" "rpo table header"
rows=0
while read -r c ty st; do
  rows=$((rows + 1))
  contains "$work/out" "^$c  *$ty  *$st  *0  *-  *-\$" "rpo table row of $c"
done < <(grep -oE '"channel_id":"[^"]*","type":"[^"]*","status":"[^"]*"' <<<"$desc" | cut -d'"' -f4,8,12 | tr '"' ' ')
[[ $rows -ge 2 ]] && ok || bad "describe listed $rows channels"
[[ $(grep -vc -e '^tunnel ' -e '^CHANNEL ' "$work/out") == "$rows" ]] && ok || bad "rpo table rows != $rows channels: $(cat "$work/out")"
stage=$(grep -o '"stage":"[^"]*"' <<<"$desc" | cut -d'"' -f4)
[[ -n $stage ]] && ok || bad "no stage in describe: $desc"
contains "$work/out" "^tunnel $id: status $stage, total count 0, rpo time -, access time -\$" "rpo table tunnel line"

# a BaseData tunnel consumed to the end: every channel TERMINATED, the 3 rows counted, times set
expect 0 "create base" -- "$L" tunnel create --table orders --tunnel b1 --type BaseData
printf 'return { process = function(ctx, batch) end }\n' >"$work/noop.lua"
expect 0 "run base to the end" -- timeout 60 "$L" run --table orders --tunnel b1 --exit-when-done "$work/noop.lua"
expect 0 "rpo table consumed" -- "$L" tunnel rpo --table orders --tunnel b1
contains "$work/out" "^BaseData_[^ ]*  *BaseData  *TERMINATED  *[0-9][0-9]*  *-  *20[0-9-]*T[0-9:.]*Z\$" "consumed row"
if grep -E '^BaseData_' "$work/out" | grep -vqE ' TERMINATED +[0-9]+ +- +20[0-9-]+T[0-9:.]+Z$'; then bad "a base channel not consumed: $(cat "$work/out")"; else ok; fi
sum=$(grep -E '^BaseData_' "$work/out" | awk '{s += $4} END {print s + 0}')
[[ $sum == 3 ]] && ok || bad "base channels counted $sum records, want 3: $(cat "$work/out")"
contains "$work/out" "^tunnel [0-9a-f-]*: status [A-Za-z]*, total count 3, rpo time -, access time 20[0-9-]*T[0-9:.]*Z\$" "consumed tunnel line"
expect 0 "delete base" -- "$L" tunnel delete --table orders --tunnel b1

# usage errors: exit 2, before any request
expect 2 "bad type" -- "$L" tunnel create --table orders --tunnel x --type Nope
contains "$work/err" "must be one of BaseData|Stream|BaseAndStream" "bad type message"
expect 2 "missing table" -- "$L" tunnel describe --tunnel cdc
contains "$work/err" "missing --table" "missing option message"
expect 2 "bad duration" -- "$L" tunnel list --request-timeout 5parsecs
expect 2 "bad time" -- "$L" tunnel create --table orders --tunnel y --type Stream --start-time yesterday
expect 2 "unknown option" -- "$L" tunnel list --frobnicate
expect 2 "no endpoint" -- env -u TABLESTORE_ENDPOINT "$L" tunnel list
expect 2 "bad endpoint" -- "$L" tunnel list --endpoint ftp://x
expect 2 "unknown subcommand" -- "$L" tunnel explode
expect 0 "help" -- "$L" help tunnel describe
contains "$work/out" "TABLESTORE_ACCESS_KEY_SECRET" "help names the env var"
if grep -q "lunnel-secret" "$work/out"; then bad "help shows the secret"; else ok; fi
expect 0 "version" -- "$L" --version
contains "$work/out" "^lunnel [0-9]" "version output"
expect 0 "markdown" -- "$L" help --markdown
contains "$work/out" '| `--endpoint URL` |' "markdown row"

# not found: exit 5
expect 5 "describe missing" -- "$L" tunnel describe --table orders --tunnel nope
contains "$work/err" "OTSParameterInvalid (HTTP 400)" "not found code"
expect 5 "create on missing table" -- "$L" tunnel create --table nosuch --tunnel x --type Stream

# auth: wrong secret -> exit 3, reported once, no retry, secret never printed
# server-level counters of /tunnel/list: "requests errors"
list_counts() { "$POST" "$E" /_emulator/stats '{}' | grep -oE '"/tunnel/list":\{"requests":[0-9]+,"errors":[0-9]+' | head -1 | grep -oE '[0-9]+' | tr '\n' ' '; }
before=$(list_counts)
expect 3 "wrong secret" -- env TABLESTORE_ACCESS_KEY_SECRET=wrong-secret-value "$L" tunnel list
contains "$work/err" "OTSAuthFailed (HTTP 403)" "auth code"
contains "$work/err" "request id " "auth request id"
if grep -q "wrong-secret-value" "$work/err" "$work/out"; then bad "secret printed"; else ok; fi
after=$(list_counts)
read -r r0 e0 <<<"$before"; read -r r1 e1 <<<"$after"
if [[ $((r1 - r0)) == 1 && $((e1 - e0)) == 1 ]]; then ok; else bad "403 was retried: before $before after $after"; fi
expect 3 "no credentials" -- env -u TABLESTORE_ACCESS_KEY_ID -u TABLESTORE_ACCESS_KEY_SECRET "$L" tunnel list
contains "$work/err" "no credentials" "no credentials message"

# credentials command
cat >"$work/creds.sh" <<'EOS'
echo '{"AccessKeyId":"lunnel-ak","AccessKeySecret":"lunnel-secret","Expiration":"2099-01-01T00:00:00Z"}'
EOS
expect 0 "credentials command" -- env -u TABLESTORE_ACCESS_KEY_ID -u TABLESTORE_ACCESS_KEY_SECRET \
  "$L" tunnel list --credentials-command "sh $work/creds.sh"
expect 3 "failing credentials command" -- "$L" tunnel list --credentials-command "exit 4"

# two injected 503s then success: retried inside the window, exit 0
"$POST" "$E" /_emulator/tunnel_stats '{"reset":true}' >/dev/null
"$POST" "$E" /_emulator/faults '{"path":"/tunnel/describe","error_rate":1,"count":2}' >/dev/null || bad "faults"
expect 0 "describe after two 503s" -- "$L" tunnel describe --table orders --tunnel cdc
stats=$("$POST" "$E" /_emulator/tunnel_stats '{}')
if grep -qE '"/tunnel/describe":\{"requests":3,"errors":2' <<<"$stats"; then ok; else bad "503s not retried as expected: $stats"; fi
# persistent 503 with no retry window: fails fast with the code, exit 1
"$POST" "$E" /_emulator/faults '{"path":"/tunnel/list","error_rate":1,"count":-1}' >/dev/null
expect 1 "persistent 503" -- "$L" tunnel list --retry-window 300ms
contains "$work/err" "503" "503 reported"
"$POST" "$E" /_emulator/faults '{"clear":true}' >/dev/null

# expired tunnel: describe still answers and shows it (exit 4 is for calls the service
# refuses with OTSTunnelExpired, unit-tested in test_tunnel_errors.c)
"$POST" "$E" /_emulator/expire_tunnel "{\"tunnel_id\":\"$id\"}" >/dev/null || bad "expire_tunnel"
expect 0 "describe expired" -- "$L" tunnel describe --table orders --tunnel cdc
contains "$work/out" "expired   yes" "describe shows expired"

# delete, then it is gone
expect 0 "delete" -- "$L" tunnel delete --table orders --tunnel cdc
expect 5 "describe deleted" -- "$L" tunnel describe --table orders --tunnel cdc
expect 0 "delete s1" -- "$L" tunnel delete --table orders --tunnel s1 --json
contains "$work/out" '"deleted":true' "delete json"
expect 0 "list empty" -- "$L" tunnel list --table orders
contains "$work/out" "no tunnels" "list empty"

# unreachable endpoint: transport error after a short retry window, exit 1
expect 1 "unreachable" -- "$L" tunnel list --endpoint http://127.0.0.1:1 --retry-window 200ms
contains "$work/err" "transport error" "transport message"

finish
