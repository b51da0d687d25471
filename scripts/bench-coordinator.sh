#!/usr/bin/env bash
# Coordinator benchmarks (release build). Rerunnable; prints medians.
#
#   scripts/bench-coordinator.sh            # all three
#   IDLE_SECS=10 RUNS=3 LATENCY_N=30 scripts/bench-coordinator.sh
#
# 1. Dispatch latency: from just before `wg add` (task ready at once) to the mock agent's
#    own start stamp (its marker file). Target: median <= 50 ms.
# 2. Idle CPU of a coordinator with nothing to do, over IDLE_SECS (default 60). Target < 1%.
# 3. 1,000 mock tasks, zero-length turns, max_agents = 8, `--until-done`: wall time.
#    Target <= 15 s.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
IDLE_SECS="${IDLE_SECS:-60}"
RUNS="${RUNS:-3}"
LATENCY_N="${LATENCY_N:-30}"
TASKS="${TASKS:-1000}"

cargo build --release --quiet --manifest-path "$ROOT/Cargo.toml"
WG="$ROOT/target/release/wg"
WORK="$(mktemp -d /tmp/wg-bench-XXXXXX)"
COORD_PID=""
cleanup() {
    if [ -n "$COORD_PID" ]; then kill -9 "$COORD_PID" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT

new_project() { # dir
    mkdir -p "$1"
    "$WG" --dir "$1" init -x mock >/dev/null
}

median() { python3 -c 'import sys,statistics; v=[float(x) for x in sys.stdin.read().split()]; print(f"{statistics.median(v):.1f}")'; }

echo "== dispatch latency (wg add -> agent running), $LATENCY_N samples"
P="$WORK/latency"
new_project "$P"
"$WG" --dir "$P" config set executors.mock.turn_ms 0 >/dev/null
"$WG" --dir "$P" service start --max-agents 4 >/dev/null
COORD_PID="$(cat "$P/.wg/service/coordinator.lock")"
: >"$WORK/latency.txt"
for i in $(seq 1 "$LATENCY_N"); do
    t0=$(date +%s%3N)
    "$WG" --dir "$P" add "lat $i" --id "lat-$i" >/dev/null
    for _ in $(seq 1 500); do
        m=$(ls "$P/.wg/tasks/lat-$i/mock-runs/" 2>/dev/null | head -1 || true)
        [ -n "$m" ] && break
        sleep 0.01
    done
    started=$(python3 -c 'import json,sys,datetime; s=json.load(open(sys.argv[1]))["started"]; print(int(datetime.datetime.fromisoformat(s.replace("Z","+00:00")).timestamp()*1000))' "$P/.wg/tasks/lat-$i/mock-runs/$m")
    echo $((started - t0)) >>"$WORK/latency.txt"
    # Let the task finish so every sample starts from an idle coordinator.
    for _ in $(seq 1 500); do
        "$WG" --dir "$P" show "lat-$i" --json | grep '"status": "done"' >/dev/null && break
        sleep 0.01
    done
done
echo "samples (ms): $(tr '\n' ' ' <"$WORK/latency.txt")"
echo "median dispatch latency: $(median <"$WORK/latency.txt") ms"

echo "== idle CPU over ${IDLE_SECS}s"
stat_ticks() { python3 -c 'import sys; s=open(f"/proc/{sys.argv[1]}/stat").read(); f=s[s.rfind(")")+2:].split(); print(int(f[11])+int(f[12]))' "$1"; }
sleep 1
c0=$(stat_ticks "$COORD_PID")
sleep "$IDLE_SECS"
c1=$(stat_ticks "$COORD_PID")
hz=$(getconf CLK_TCK)
python3 -c "print(f'idle CPU: {($c1-$c0)/$hz/$IDLE_SECS*100:.3f}% of one core ({$c1-$c0} ticks in ${IDLE_SECS}s)')"
"$WG" --dir "$P" service stop >/dev/null
COORD_PID=""

echo "== $TASKS mock tasks, zero-length turns, max_agents=8, $RUNS runs"
: >"$WORK/bulk.txt"
for r in $(seq 1 "$RUNS"); do
    P="$WORK/bulk-$r"
    new_project "$P"
    "$WG" --dir "$P" config set executors.mock.turn_ms 0 >/dev/null
    python3 -c "
import json
for i in range($TASKS):
    print(json.dumps({'id': f'bulk-{i:04d}', 'title': f'bulk {i}'}))" >"$WORK/bulk.jsonl"
    "$WG" --dir "$P" import "$WORK/bulk.jsonl" >/dev/null
    t0=$(date +%s%3N)
    "$WG" --dir "$P" service start --foreground --until-done --max-agents 8 >/dev/null 2>&1
    t1=$(date +%s%3N)
    done_count=$("$WG" --dir "$P" list --json | grep -c '"status": "done"')
    secs=$(python3 -c "print(f'{($t1-$t0)/1000:.2f}')")
    echo "run $r: ${secs}s, $done_count done"
    echo "$secs" >>"$WORK/bulk.txt"
done
echo "median wall time for $TASKS tasks: $(median <"$WORK/bulk.txt") s"
