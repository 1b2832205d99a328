#!/usr/bin/env bash
# Seconds from a fresh clone to the first confirmed order with `make run`.
#
#   bench/first_order.sh [REPO] [REF]        (default: this checkout's repository, HEAD)
#
# Clones REPO at REF into a temporary folder, starts `make run` there (on two free ports, so it
# does not collide with an OrderFlow already running), waits for the gateway, registers a customer,
# gets a token, places an order and polls it until `confirmed`; prints the seconds from the start
# of `make run` (venv, install, migrate, seed, start) to that moment, then stops everything it
# started and deletes the clone.
#
# CACHE=cold (default): pip's and uv's caches start empty (fresh folders, deleted afterwards).
# CACHE=warm: they live in $BENCH_CACHE_DIR (default /tmp/orderflow-bench-cache), kept between
#             runs: run once to fill them, then measure.
set -euo pipefail

here="$(cd "$(dirname "$0")/.." && pwd)"
repo="${1:-$here}"
ref="${2:-HEAD}"
cache="${CACHE:-cold}"

work="$(mktemp -d /tmp/orderflow-first-order.XXXXXX)"
if [[ "$cache" == warm ]]; then
  caches="${BENCH_CACHE_DIR:-/tmp/orderflow-bench-cache}"
else
  caches="$work/cache"
fi
mkdir -p "$caches/pip" "$caches/uv"

pgid=""
cleanup() {
  if [[ -n "$pgid" ]] && kill -0 -- "-$pgid" 2>/dev/null; then
    kill -INT -- "-$pgid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 -- "-$pgid" 2>/dev/null || break; sleep 0.2; done
    kill -KILL -- "-$pgid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

git clone --quiet "$repo" "$work/src"
git -C "$work/src" checkout --quiet --detach "$ref"

read -r port api_port < <(python3 - <<'EOF'
import socket
socks = [socket.socket() for _ in range(2)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in socks))
EOF
)

start=$(date +%s.%N)
(
  cd "$work/src"
  export ORDERFLOW_PORT="$port" ORDERFLOW_API_PORT="$api_port"
  export PIP_CACHE_DIR="$caches/pip" UV_CACHE_DIR="$caches/uv"
  exec setsid make run >"$work/run.log" 2>&1
) &
pgid=$!  # setsid makes the make process the leader of its own group: its pid is the group id

python3 - "$port" "$work/run.log" <<'EOF'
import json, sys, time, urllib.error, urllib.parse, urllib.request

port, log = sys.argv[1], sys.argv[2]
base = f"http://127.0.0.1:{port}"
deadline = time.monotonic() + 900


def call(method, path, body=None, form=None, token=None, headers=None):
    h = dict(headers or {})
    data = None
    if body is not None:
        data, h["content-type"] = json.dumps(body).encode(), "application/json"
    if form is not None:
        data = urllib.parse.urlencode(form).encode()
        h["content-type"] = "application/x-www-form-urlencoded"
    if token:
        h["authorization"] = f"Bearer {token}"
    req = urllib.request.Request(base + path, data=data, headers=h, method=method)
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read() or b"null")


while True:  # the gateway answers once `make run` has installed, migrated and started it
    if time.monotonic() > deadline:
        sys.exit(f"make run did not come up; see {log}:\n" + open(log).read()[-3000:])
    try:
        call("GET", "/healthz")
        break
    except (OSError, urllib.error.URLError):
        time.sleep(0.1)

email, password = "first-order@example.com", "correct horse battery"
call("POST", "/auth/register", {"email": email, "password": password, "name": "First"})
token = call("POST", "/auth/token", form={"username": email, "password": password})["access_token"]
order = call(
    "POST", "/api/v1/orders", token=token, headers={"Idempotency-Key": "first-order"},
    body={
        "items": [{"sku": "MUG-WHT", "quantity": 1}],
        "payment": {"token": "tok_visa"},
        "shipping_address": {"name": "First", "line1": "1 Main St", "city": "London",
                             "postal_code": "N1", "country": "GB"},
    },
)
while True:
    status = call("GET", f"/api/v1/orders/{order['id']}", token=token)["status"]
    if status == "confirmed":
        break
    if status in ("failed", "cancelled") or time.monotonic() > deadline:
        sys.exit(f"order ended {status}")
    time.sleep(0.05)
EOF

end=$(date +%s.%N)
python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f}')" "$start" "$end"
