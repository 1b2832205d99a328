#!/usr/bin/env bash
# The distributed shape under load: PostgreSQL + NATS JetStream, then PostgreSQL + RabbitMQ.
# For each broker: a fresh database and broker prefix, `orderflow migrate` + `seed`, then the API,
# INSTANCES of every worker and a relay as separate processes, and `orderflow bench`.
#
#   bench/distributed.sh                 # both brokers, 5000 orders each
#   ORDERS=1000 INSTANCES=1 bench/distributed.sh nats
#   LOAD="--rate 80 --duration 20" INSTANCES=1 bench/distributed.sh nats   # latency below capacity
#
# Needs PostgreSQL on 127.0.0.1:5432 (trust auth for PGUSER), NATS with JetStream on :4222 and
# RabbitMQ on :5672 (guest/guest). `bench --direct` talks to the API with assertions signed from
# the data dir, so the gateway is not in the path. The database is dropped afterwards; the
# broker's streams/queues stay under their unique prefix (delete them with the server's tools).
set -euo pipefail

cd "$(dirname "$0")/.."
BIN=${BIN:-.venv/bin}
ORDERS=${ORDERS:-5000}
INSTANCES=${INSTANCES:-2}
CONCURRENCY=${CONCURRENCY:-64}
LOAD=${LOAD:---max --orders $ORDERS}
PGUSER=${PGUSER:-postgres}
BROKERS=("$@")
[ ${#BROKERS[@]} -eq 0 ] && BROKERS=(nats rabbitmq)

declare -A BROKER_URLS=(
  [nats]="nats://127.0.0.1:4222"
  [rabbitmq]="amqp://guest:guest@127.0.0.1:5672/"
)

run_one() {
  local broker=$1 run db dir pids=()
  run=$(date +%s)-$$
  db="orderflow_bench_${run//-/_}"
  dir=$(mktemp -d "/tmp/orderflow-bench-$broker-XXXX")
  export ORDERFLOW_DATA_DIR=$dir
  export ORDERFLOW_DATABASE_URL="postgresql+asyncpg://$PGUSER@127.0.0.1:5432/$db"
  export ORDERFLOW_BROKER_URL=${BROKER_URLS[$broker]}
  export ORDERFLOW_BROKER_PREFIX="bench.${run//-/_}"
  export ORDERFLOW_LOG_LEVEL=WARNING
  psql -qh 127.0.0.1 -U "$PGUSER" -d postgres -c "CREATE DATABASE $db"
  # shellcheck disable=SC2317
  cleanup() {
    kill -TERM "${pids[@]}" 2>/dev/null || true
    wait "${pids[@]}" 2>/dev/null || true
    psql -qh 127.0.0.1 -U "$PGUSER" -d postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)"
  }
  trap cleanup RETURN

  "$BIN/orderflow" migrate >/dev/null
  "$BIN/orderflow" seed >/dev/null
  # The gateway's signing key (the gateway would create it); the API trusts its JWKS.
  "$BIN/python" -c "import sys; from pathlib import Path
from orderflow.adapters.identity.assertions import ensure_signing_key
ensure_signing_key(Path(sys.argv[1]))" "$dir/keys"
  local port=${API_PORT:-18080} first=${HEALTH_PORT:-18100} health
  health=$first
  "$BIN/orderflow" serve api --port "$port" >"$dir/api.log" 2>&1 & pids+=($!)
  "$BIN/orderflow" relay --health-port "$health" >"$dir/relay.log" 2>&1 & pids+=($!)
  for worker in orders inventory payment; do
    for i in $(seq 1 "$INSTANCES"); do
      health=$((health + 1))
      "$BIN/orderflow" worker "$worker" --health-port "$health" \
        >"$dir/$worker-$i.log" 2>&1 & pids+=($!)
    done
  done
  for p in $(seq "$first" "$health") "$port"; do
    local tries=0
    until curl -fs "http://127.0.0.1:$p/readyz" >/dev/null; do
      tries=$((tries + 1))
      if [ $tries -gt 300 ]; then echo "port $p never ready; logs in $dir" >&2; return 1; fi
      sleep 0.2
    done
  done

  echo "== PostgreSQL + $broker: API, $INSTANCES x (orders, inventory, payment), 1 relay"
  echo "\$ $BIN/orderflow bench --direct $LOAD --connections $CONCURRENCY" \
    "--url http://127.0.0.1:$port --data-dir $dir"
  # shellcheck disable=SC2086  # LOAD is several options
  "$BIN/orderflow" bench --direct $LOAD --connections "$CONCURRENCY" \
    --url "http://127.0.0.1:$port" --data-dir "$dir"
  "$BIN/orderflow" audit | tail -1
}

for broker in "${BROKERS[@]}"; do
  run_one "$broker"
done
