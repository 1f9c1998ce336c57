#!/usr/bin/env bash
# The demo `make up` ends with: every service's readiness, then commands
# through the command API — a customer registered, an order driven to
# DELIVERED, another cancelled, and a command the domain rejects. (The
# read side joins the demo as the relay and projectors land.)
set -euo pipefail
api=${COMMAND_API:-http://127.0.0.1:8081}

echo
echo "== services =="
for port in 9081 9082 9083 9084 9085 9086 9087 9088; do
  body=$(curl -sS "http://127.0.0.1:$port/readyz")
  name=$(curl -sS "http://127.0.0.1:$port/metrics" | sed -nE 's/^orderstream_build_info\{service="([^"]+)".*/\1/p')
  printf '%-32s :%s  %s\n' "$name" "$port" "$body"
done

send() { # method path [body] — prints the status and the answer
  local method=$1 path=$2 body=${3:-}
  local args=(-sS -X "$method" -w '\n%{http_code}' -H 'Content-Type: application/json' -H "X-Correlation-ID: demo")
  [[ -n "$body" ]] && args+=(-d "$body")
  local out; out=$(curl "${args[@]}" "$api$path")
  local status=${out##*$'\n'} answer=${out%$'\n'*}
  answer=${answer%$'\n'}
  printf '%-6s %-58s → %s %s\n' "$method" "$path" "$status" "$answer" >&2
  printf '%s' "$answer"
}
field() { sed -nE "s/.*\"$1\":\"?([^\",}]+)\"?.*/\1/p"; }

echo
echo "== commands =="
customer=$(send POST /v1/customers '{"name":"Ada Lovelace","email":"ada@example.org","phone":"+44 20 7946 0958"}' | field id)
send POST "/v1/customers/$customer/addresses" '{"label":"home","line1":"12 St James Sq","city":"London","postal_code":"SW1Y 4JH","country":"GB"}' >/dev/null
order=$(send POST /v1/orders "{\"customer_id\":\"$customer\",\"items\":[{\"product_id\":\"analytical-engine\",\"quantity\":1,\"unit_price\":{\"amount_minor\":99900,\"currency\":\"GBP\"}}]}" | field id)
send POST "/v1/orders/$order/confirm" >/dev/null
send POST "/v1/orders/$order/ship" '{"carrier":"Royal Mail","tracking_number":"RM123456789GB"}' >/dev/null
send POST "/v1/orders/$order/deliver" '{"signature":"A. Lovelace"}' >/dev/null
other=$(send POST /v1/orders "{\"customer_id\":\"$customer\",\"items\":[{\"product_id\":\"difference-engine\",\"quantity\":2,\"unit_price\":{\"amount_minor\":45000,\"currency\":\"GBP\"}}]}" | field id)
send POST "/v1/orders/$other/cancel" '{"reason":"changed my mind","cancelled_by":"customer"}' >/dev/null
echo "a rejected command (a delivered order cannot be cancelled):" >&2
send POST "/v1/orders/$order/cancel" '{"reason":"too late","cancelled_by":"customer"}' >/dev/null || true

echo
echo "== read models (the projectors apply what the relay publishes) =="
for p in order-read-model:9085 orders-by-customer:9086 orders-by-status:9087 customer-read-model:9088; do
  name=${p%%:*} port=${p##*:} applied=0
  for _ in $(seq 1 50); do # up to ~10 s for the relay's scan and the projector
    applied=$(curl -s "http://127.0.0.1:$port/metrics" | sed -nE 's/^orderstream_projector_events_applied_total\{[^}]*\} ([0-9.e+]+)$/\1/p' | head -1)
    [[ -n "$applied" && "$applied" != 0 ]] && break
    sleep 0.2
  done
  printf '%-22s events applied: %s\n' "$name" "${applied:-0}"
done

echo
echo "== queries (the query API on :8082) =="
query=${QUERY_API:-http://127.0.0.1:8082}
read_() { # path — prints the status and the answer
  local out; out=$(curl -sS -w '\n%{http_code}' -H "X-Correlation-ID: demo" "$query$1")
  printf 'GET    %-58s → %s %s\n' "$1" "${out##*$'\n'}" "${out%$'\n'*}"
}
read_ "/v1/orders/$order?min_version=4"
read_ "/v1/customers/$customer/orders?limit=10"
read_ "/v1/orders/$order/events?limit=2"
read_ "/v1/orders/$order?at_version=2"
read_ "/v1/orders?status=DELIVERED&limit=5"

echo
echo "Command API: $api (OpenAPI at $api/openapi.json). Admin: http://127.0.0.1:908N/{healthz,readyz,metrics}."
echo "Logs: .run/services/*.log and .run/stack/*/logs/. Stop everything with 'make down'."
