#!/usr/bin/env bash
# Dispatch cost of agents run as Slurm jobs (release build), against the cluster that
# scripts/slurm-up.sh starts. Rerunnable; prints medians over RUNS runs.
#
#   scripts/bench-slurm.sh                 # TASKS=40 RUNS=3
#   TASKS=80 RUNS=5 scripts/bench-slurm.sh
#
# Each run: TASKS mock tasks with zero-length turns, max_agents = 8, once with
# launcher = "local" and once with launcher = "slurm", on a running coordinator. When every
# task is done, /proc/PID/stat gives the coordinator's own CPU (utime+stime) and that of the
# commands it waited for (cutime+cstime: sbatch, squeue and scancel under Slurm; the agents
# themselves under the local launcher). A logging squeue wrapper first on PATH counts the
# coordinator's squeue calls: one per tick (slurm.poll_interval), however many jobs run.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
RUNS="${RUNS:-3}"
TASKS="${TASKS:-40}"
POLL="${POLL:-1s}"

"$ROOT/scripts/slurm-up.sh"
cargo build --release --quiet --manifest-path "$ROOT/Cargo.toml"
WG="$ROOT/target/release/wg"
WORK="$(mktemp -d /tmp/wg-bench-slurm-XXXXXX)"
COORD_PID=""
cleanup() {
    if [ -n "$COORD_PID" ]; then kill -9 "$COORD_PID" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT

REAL_SQUEUE="$(command -v squeue)"
mkdir -p "$WORK/bin"
cat >"$WORK/bin/squeue" <<WRAP
#!/bin/sh
echo "\$(date +%s.%N) \$*" >> "\$WG_BENCH_SQUEUE_LOG"
exec "$REAL_SQUEUE" "\$@"
WRAP
chmod +x "$WORK/bin/squeue"

median() { python3 -c 'import sys,statistics; v=[float(x) for x in sys.stdin.read().split()]; print(f"{statistics.median(v):.2f}")'; }
# utime+stime and cutime+cstime of a pid, in clock ticks.
cpu_ticks() { python3 -c 'import sys; s=open(f"/proc/{sys.argv[1]}/stat").read(); f=s[s.rfind(")")+2:].split(); print(int(f[11])+int(f[12]), int(f[13])+int(f[14]))' "$1"; }
HZ="$(getconf CLK_TCK)"

run_one() { # launcher run -> "own_ms_per_job child_ms_per_job wall_s squeue_calls"
    local launcher="$1" r="$2"
    local P="$WORK/$launcher-$r"
    mkdir -p "$P"
    "$WG" --dir "$P" init -x mock >/dev/null
    "$WG" --dir "$P" config set executors.mock.turn_ms 0 >/dev/null
    "$WG" --dir "$P" config set coordinator.launcher "$launcher" >/dev/null
    "$WG" --dir "$P" config set slurm.poll_interval "$POLL" >/dev/null
    python3 -c "
import json
for i in range($TASKS):
    print(json.dumps({'id': f'b{i:04d}', 'title': f'b{i}'}))" >"$P/tasks.jsonl"
    "$WG" --dir "$P" import "$P/tasks.jsonl" >/dev/null
    export WG_BENCH_SQUEUE_LOG="$P/squeue.log"
    : >"$WG_BENCH_SQUEUE_LOG"
    local t0
    t0=$(date +%s.%N)
    PATH="$WORK/bin:$PATH" "$WG" --dir "$P" service start --max-agents 8 >/dev/null
    COORD_PID="$(cat "$P/.wg/service/coordinator.lock")"
    until "$WG" --dir "$P" status --json | python3 -c "
import json,sys
d=json.load(sys.stdin)
c=d.get('counts', d)
sys.exit(0 if c.get('done',0)==$TASKS else 1)" 2>/dev/null; do
        sleep 0.2
    done
    local t1 ticks
    t1=$(date +%s.%N)
    ticks=$(cpu_ticks "$COORD_PID")
    "$WG" --dir "$P" service stop >/dev/null
    COORD_PID=""
    local calls
    calls=$(grep -c -- '--jobs=' "$WG_BENCH_SQUEUE_LOG" || true)
    python3 -c "
own, child = map(int, '$ticks'.split())
print(f'{own/$HZ*1000/$TASKS:.2f} {child/$HZ*1000/$TASKS:.2f} {$t1-$t0:.1f} $calls')"
}

for launcher in local slurm; do
    : >"$WORK/$launcher.txt"
    for r in $(seq 1 "$RUNS"); do
        line="$(run_one "$launcher" "$r")"
        echo "$launcher run $r: own CPU ms/job, waited-for CPU ms/job, wall s, squeue calls: $line"
        echo "$line" >>"$WORK/$launcher.txt"
    done
done

col() { awk -v c="$2" '{print $c}' "$WORK/$1.txt" | median; }
echo "== medians over $RUNS runs, $TASKS tasks each, max_agents = 8"
for launcher in local slurm; do
    echo "$launcher: coordinator own CPU $(col "$launcher" 1) ms/job; commands it waited for $(col "$launcher" 2) ms/job; wall $(col "$launcher" 3) s; squeue calls $(col "$launcher" 4)"
done
python3 -c "
import statistics
def med(f, c):
    return statistics.median(float(l.split()[c]) for l in open(f))
s_own, l_own = med('$WORK/slurm.txt', 0), med('$WORK/local.txt', 0)
wall, calls = med('$WORK/slurm.txt', 2), med('$WORK/slurm.txt', 3)
poll = float('$POLL'.rstrip('s'))
print(f'slurm/local own CPU per job: {s_own/max(l_own,1e-9):.2f}x')
print(f'squeue calls per poll interval of wall time: {calls/(wall/poll):.2f} (1.00 = one call per tick); calls per job: {calls/$TASKS:.2f}')"
