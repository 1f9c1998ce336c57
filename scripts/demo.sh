#!/usr/bin/env bash
# The demo `make up` ends with: every service's readiness; commands through
# the command API — two customers registered (one with an address), an
# order driven CREATED → CONFIRMED → SHIPPED → DELIVERED, one left
# CONFIRMED, one cancelled, and a command the domain rejects, with its
# problem JSON; after each command carried out, a read with min_version on
# the query API until the read model shows it (commit → read model). Then
# what the read models show (by id, by customer, by status), one order's
# event history, the DLQ stats, and the commit → read-model latencies seen.
# Needs curl; pretty-prints JSON with python3 when it is there.
set -euo pipefail
api=${COMMAND_API:-http://127.0.0.1:8081}
query=${QUERY_API:-http://127.0.0.1:8082}
dlq=${DLQ_API:-http://127.0.0.1:8083}
READ_TIMEOUT=${READ_TIMEOUT:-30} # seconds a commit may take to reach its read model

echo
echo "== services =="
for port in 9081 9082 9083 9084 9085 9086 9087 9088; do
  body=$(curl -sS "http://127.0.0.1:$port/readyz")
  name=$(curl -sS "http://127.0.0.1:$port/metrics" | sed -nE 's/^orderstream_build_info\{service="([^"]+)".*/\1/p')
  printf '%-32s :%s  %s\n' "$name" "$port" "$body"
done

# pretty: JSON on stdin, indented when python3 is there, as it came otherwise.
pretty() {
  local in; in=$(cat)
  if command -v python3 >/dev/null; then
    python3 -c 'import json, sys; print(json.dumps(json.load(sys.stdin), indent=2, ensure_ascii=False))' <<<"$in" 2>/dev/null && return
  fi
  printf '%s\n' "$in"
}
field() { sed -nE "s/.*\"$1\":\"?([^\",}]+)\"?.*/\1/p" | head -1; }
# now: microseconds since the epoch, without starting a process (bash 5).
now() {
  if [[ -n ${EPOCHREALTIME:-} ]]; then now=${EPOCHREALTIME//[!0-9]/}; else now=$(($(date +%s%N) / 1000)); fi
}
ms() { printf '%d.%d' $(($1 / 1000)) $(($1 % 1000 / 100)); } # microseconds → "12.3"

latencies=() # commit → read model, in microseconds, one per command carried out
# send method path [body] — sends a command with a fresh Idempotency-Key and
# prints one line; sets status, answer, id and version. When it is carried
# out, reads the aggregate back with min_version=version until the read
# model answers 200, and notes how long after the command's answer that was.
send() {
  local method=$1 path=$2 body=${3:-}
  local args=(-sS -X "$method" -w '\n%{http_code}' -H "X-Correlation-ID: demo" -H "Idempotency-Key: demo-$RANDOM$RANDOM-$SECONDS")
  [[ -n "$body" ]] && args+=(-H 'Content-Type: application/json' -d "$body")
  local out; out=$(curl "${args[@]}" "$api$path")
  now; local committed=$now
  status=${out##*$'\n'} answer=${out%$'\n'*}
  answer=${answer%$'\n'}
  id=$(field id <<<"$answer") version=$(field version <<<"$answer")
  if [[ "$status" != 2* ]]; then
    printf '%-6s %-58s → %s\n' "$method" "$path" "$status"
    pretty <<<"$answer"
    return
  fi
  printf '%-6s %-58s → %s %s' "$method" "$path" "$status" "$answer"
  local read_path=/v1/orders/$id
  [[ "$path" == /v1/customers* ]] && read_path=/v1/customers/$id
  local deadline=$((SECONDS + READ_TIMEOUT)) read_status
  until read_status=$(curl -s -o /dev/null -w '%{http_code}' -m 10 "$query$read_path?min_version=$version") && [[ "$read_status" == 200 ]]; do
    # 409: the query service waited its own bound (2 s) for the read
    # model; ask again until ours.
    if ((SECONDS > deadline)); then
      printf '   read model: not at version %s after %ss (last answer %s)\n' "$version" "$READ_TIMEOUT" "$read_status"
      return
    fi
    [[ "$read_status" == 409 ]] || sleep 0.1
  done
  now
  latencies+=($((now - committed)))
  printf '   read model at v%s after %s ms\n' "$version" "$(ms $((now - committed)))"
}

since=$(date -u +%Y-%m-%dT%H:%M:%SZ) # the listings below show only this demo's orders
item() { printf '{"product_id":"%s","quantity":%d,"unit_price":{"amount_minor":%d,"currency":"GBP"}}' "$1" "$2" "$3"; }

echo
echo "== commands (the command API on :8081; each carried out is read back with min_version on :8082) =="
send POST /v1/customers '{"name":"Ada Lovelace","email":"ada@example.org","phone":"+44 20 7946 0958"}'
ada=$id
send POST "/v1/customers/$ada/addresses" '{"label":"home","line1":"12 St James Sq","city":"London","postal_code":"SW1Y 4JH","country":"GB"}'
send POST /v1/customers '{"name":"Charles Babbage","email":"charles@example.org"}'
charles=$id

send POST /v1/orders "{\"customer_id\":\"$ada\",\"items\":[$(item analytical-engine 1 99900),$(item punched-cards 500 12)]}"
order=$id
send POST "/v1/orders/$order/confirm"
send POST "/v1/orders/$order/ship" '{"carrier":"Royal Mail","tracking_number":"RM123456789GB"}'
send POST "/v1/orders/$order/deliver" '{"signature":"A. Lovelace"}'

send POST /v1/orders "{\"customer_id\":\"$ada\",\"items\":[$(item mill-gears 12 2500)]}"
confirmed=$id
send POST "/v1/orders/$confirmed/confirm"

send POST /v1/orders "{\"customer_id\":\"$charles\",\"items\":[$(item difference-engine 2 45000)]}"
cancelled=$id
send POST "/v1/orders/$cancelled/cancel" '{"reason":"changed my mind","cancelled_by":"customer"}'

echo
echo "a rejected command — a cancelled order cannot ship; the answer is RFC 9457 problem JSON:"
send POST "/v1/orders/$cancelled/ship" '{"carrier":"Royal Mail","tracking_number":"RM000000000GB"}'

echo
echo "== read models (the query API on :8082) =="
# get path [needle] — GET on the query API, pretty-printed; with a needle,
# asks again (up to 10 s) until the answer contains it: the lists are
# projected by their own projectors, which no min_version waits for.
get() {
  local path=$1 needle=${2:-} out deadline=$((SECONDS + 10))
  while :; do
    out=$(curl -sS -w '\n%{http_code}' -H "X-Correlation-ID: demo" "$query$path")
    if [[ -z "$needle" || "$out" == *"$needle"* ]] || ((SECONDS > deadline)); then break; fi
    sleep 0.2
  done
  printf 'GET    %s → %s\n' "$path" "${out##*$'\n'}"
  pretty <<<"${out%$'\n'*}"
}
echo "-- order_read_model, by id:"
get "/v1/orders/$order"
echo "-- customer_read_model, by id:"
get "/v1/customers/$ada"
echo "-- orders_by_customer:"
get "/v1/customers/$ada/orders?limit=10" "$confirmed"
echo "-- orders_by_status (created since $since):"
get "/v1/orders?status=DELIVERED&created_after=$since&limit=5" "$order"
get "/v1/orders?status=CONFIRMED&created_after=$since&limit=5" "$confirmed"
get "/v1/orders?status=CANCELLED&created_after=$since&limit=5" "$cancelled"
echo "-- the delivered order as it was at version 2, folded from event_store:"
get "/v1/orders/$order?at_version=2"

echo
echo "== event history of order $order (event_store) =="
get "/v1/orders/$order/events"

echo
echo "== dead-letter queue (the DLQ API on :8083) =="
dlq_out=$(curl -s -m 5 -w '\n%{http_code}' "$dlq/v1/dlq/stats" 2>/dev/null) || true
case "${dlq_out##*$'\n'}" in
  200) echo "GET    /v1/dlq/stats → 200"; pretty <<<"${dlq_out%$'\n'*}" ;;
  000 | "") echo "DLQ stats not available: nothing answers at $dlq (is dlq-service running?)" ;;
  *) echo "DLQ stats not available: GET $dlq/v1/dlq/stats answered ${dlq_out##*$'\n'} (this dlq-service does not serve them yet)" ;;
esac

echo
echo "== commit → read model =="
if ((${#latencies[@]} > 0)); then
  mapfile -t sorted < <(printf '%s\n' "${latencies[@]}" | sort -n)
  n=${#sorted[@]}
  printf '%d commands, each read back with min_version until the read model showed it: min %s ms, median %s ms, max %s ms\n' \
    "$n" "$(ms "${sorted[0]}")" "$(ms "${sorted[$((n / 2))]}")" "$(ms "${sorted[$((n - 1))]}")"
  echo "(from the command's answer to the read's 200, timed by this shell, so a few ms of starting curl are in it;"
  echo " go run ./pkg/cmd/loadgen measures it under load.)"
else
  echo "no command was read back"
fi

echo
echo "Command API: $api (OpenAPI at $api/openapi.json). Query API: $query. Admin: http://127.0.0.1:908N/{healthz,readyz,metrics}."
echo "Logs: .run/services/*.log and .run/stack/*/logs/. Load: go run ./pkg/cmd/loadgen. Stop everything with 'make down'."
