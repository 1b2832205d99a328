#!/usr/bin/env bash
# `orderflow bench` against a fresh `orderflow run` (embedded shape, through the gateway), with the
# CPU each process spent per finished order and the memory of the process tree at rest.
#
#   bench/embedded_run.sh RATE SECONDS [extra `orderflow bench` options...]
#   bench/embedded_run.sh max 20                  (closed loop: --max --duration 20)
#
# Starts `orderflow run` on ports 18700-18702 with data in a fresh temporary folder, waits for the
# gateway, notes the resident memory of the supervisor and its children after 3 s at rest and
# their CPU time (utime+stime from /proc), runs the bench, reads the CPU time again and prints
# milliseconds of CPU per finished order for each process, then the bench's own report. The
# JSON report and an SVG chart stay in the folder it prints. BIN: the venv's bin folder
# (default: this checkout's .venv/bin), e.g. to compare another checkout side by side.
set -euo pipefail

here="$(cd "$(dirname "$0")/.." && pwd)"
bin="${BIN:-$here/.venv/bin}"
rate="$1"; seconds="$2"; shift 2
data="$(mktemp -d /tmp/orderflow-bench.XXXXXX)"

ORDERFLOW_STREAM_PORT=18702 "$bin/orderflow" run --data-dir "$data" --port 18700 --api-port 18701 \
  >"$data/run.log" 2>&1 &
supervisor=$!
trap 'kill -INT $supervisor 2>/dev/null; wait $supervisor 2>/dev/null || true' EXIT
launched=$(date +%s.%N)
until curl -sf http://127.0.0.1:18700/readyz >/dev/null; do sleep 0.1; done
echo "gateway ready $(echo "$(date +%s.%N) - $launched" | bc) s after launch"
sleep 3

processes() { echo "$supervisor"; pgrep -P "$supervisor"; }
name() {
  tr '\0' ' ' <"/proc/$1/cmdline" \
    | awk '{for (i = 1; i <= NF; i++) if ($i == "run" || $i == "serve" || $i == "worker") {
              print ($i == "run") ? "supervisor" : $i "-" $(i + 1); exit }}'
}
cpu_ticks() { for p in $(processes); do echo "$(name "$p") $(awk '{print $14 + $15}' "/proc/$p/stat")"; done; }

echo "resident memory at rest:"
for p in $(processes); do printf '  %-16s %6.1f MB\n' "$(name "$p")" "$(awk '/VmRSS/ {print $2 / 1024}' "/proc/$p/status")"; done
cpu_ticks >"$data/cpu.before"

if [[ "$rate" == max ]]; then load=(--max --duration "$seconds"); else load=(--rate "$rate" --duration "$seconds"); fi
"$bin/orderflow" bench --url http://127.0.0.1:18700 "${load[@]}" --report "$data/report.json" \
  --chart "$data/chart.svg" "$@" | tee "$data/bench.txt"
cpu_ticks >"$data/cpu.after"

python3 - "$data" "$(getconf CLK_TCK)" <<'PY'
import json, sys
folder, hz = sys.argv[1], int(sys.argv[2])
read = lambda f: dict(line.split() for line in open(f"{folder}/{f}"))
before, after = read("cpu.before"), read("cpu.after")
finished = json.load(open(f"{folder}/report.json"))["processing"]["finished"] or 1
total = 0.0
print(f"CPU per finished order ({finished} orders):")
for name, ticks in after.items():
    ms = (int(ticks) - int(before.get(name, 0))) * 1000 / hz / finished
    total += ms
    print(f"  {name:16s} {ms:6.2f} ms")
print(f"  {'all':16s} {total:6.2f} ms")
PY
echo "report, chart and logs: $data"
