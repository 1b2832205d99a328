#!/usr/bin/env bash
# Seconds from a fresh clone to the first confirmed order with `make run`.
#
#   bench/first_order.sh [REPO] [REF]        (default: this checkout's repository, HEAD)
#
# Clones REPO at REF into a temporary folder, starts `make run` there (on two free ports, so it
# does not collide with an OrderFlow already running), waits for it to print its URLs, registers a
# customer, gets a token, places an order and polls it until `confirmed`; prints the seconds from
# the start of `make run` (venv, install, migrate, seed, start) to that moment, then stops
# everything it started and deletes the clone. On stderr: how those seconds split between
# installing (until make starts `orderflow run`), starting (until the URLs are printed) and the
# order itself.
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
start=$(python3 -c 'import time; print(time.time())')
(
  cd "$work/src"
  export ORDERFLOW_PORT="$port" ORDERFLOW_API_PORT="$api_port"
  export PIP_CACHE_DIR="$caches/pip" UV_CACHE_DIR="$caches/uv"
  exec setsid make run >"$work/run.log" 2>&1
) &
pgid=$!  # setsid makes the make process the leader of its own group: its pid is the group id

python3 - "$start" "$port" "$work/run.log" <<'EOF'
import json, sys, time, urllib.parse, urllib.request

start, port, log = float(sys.argv[1]), sys.argv[2], sys.argv[3]
base = f"http://127.0.0.1:{port}"
deadline = start + 900


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


installed = None  # when make, done installing, starts `orderflow run`
while "OrderFlow is running." not in (text := open(log).read()):  # printed once all is healthy
    if installed is None and "bin/orderflow run" in text:
        installed = time.time()
    if time.time() > deadline:
        sys.exit("make run did not come up:\n" + text[-3000:])
    time.sleep(0.05)
started = time.time()
installed = installed or started

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
    if status in ("failed", "cancelled") or time.time() > deadline:
        sys.exit(f"order ended {status}")
    time.sleep(0.05)
done = time.time()
print(f"install {installed - start:.1f} s, start {started - installed:.1f} s,"
      f" order {done - started:.1f} s", file=sys.stderr)
print(f"{done - start:.1f}")
EOF
