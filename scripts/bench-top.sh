#!/usr/bin/env bash
# wg top benchmarks (release build, under tmux). Rerunnable; prints medians.
#
#   scripts/bench-top.sh
#   N=20 IDLE_SECS=10 TASKS=1000 scripts/bench-top.sh
#
# 1. Event latency: from appending a command event to a running agent's events.jsonl to the
#    command being on wg top's screen (tmux capture-pane polled every 10 ms). Target: < 1 s.
# 2. CPU of wg top over IDLE_SECS with a running agent and no events (clock redraws only), on a
#    project of TASKS tasks.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
N="${N:-20}"
IDLE_SECS="${IDLE_SECS:-10}"
TASKS="${TASKS:-1000}"

cargo build --release --quiet --manifest-path "$ROOT/Cargo.toml"
WG="$ROOT/target/release/wg"
WORK="$(mktemp -d /tmp/wg-bench-top-XXXXXX)"
SOCK="$WORK/tmux.sock"
P="$WORK/p"
cleanup() {
    tmux -S "$SOCK" kill-server 2>/dev/null || true
    "$WG" --dir "$P" service stop --force >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT

median() { python3 -c 'import sys,statistics; v=[float(x) for x in sys.stdin.read().split()]; print(f"{statistics.median(v):.1f}")'; }
now_ms() { date +%s%3N; }

mkdir -p "$P"
"$WG" --dir "$P" init -x mock >/dev/null
printf '\n[executors.sleeper]\ncommand = ["sleep", "600"]\nconversational = true\n' >> "$P/.wg/config.toml"
python3 -c "
import json
for i in range($TASKS):
    print(json.dumps({'id': f'done-{i:05}', 'title': f'Finished task {i}', 'status': 'done'}))
" | "$WG" --dir "$P" import - >/dev/null
"$WG" --dir "$P" add "Live task" -x sleeper >/dev/null
"$WG" --dir "$P" service start >/dev/null
for _ in $(seq 100); do
    "$WG" --dir "$P" service status --json 2>/dev/null | grep -q '"live-task"' && break
    sleep 0.1
done
tmux -S "$SOCK" -f /dev/null new-session -d -s top -x 80 -y 24 "env WG_DIR=$P/.wg $WG top"
until tmux -S "$SOCK" capture-pane -p -t top | grep -q "in-progress live-task"; do sleep 0.05; done

EV="$P/.wg/tasks/live-task/events.jsonl"
echo "== event to screen, $N samples ($TASKS done tasks in the graph)"
samples=()
for i in $(seq "$N"); do
    cmd="step-$i-$RANDOM"
    t0=$(now_ms)
    printf '{"turn":1,"ts":"2026-01-01T00:00:00.000Z","event":{"type":"item.started","item":{"type":"command_execution","command":"%s"}}}\n' "$cmd" >> "$EV"
    until tmux -S "$SOCK" capture-pane -p -t top | grep -q "$cmd"; do sleep 0.01; done
    samples+=($(( $(now_ms) - t0 )))
    sleep 0.2
done
echo "latency ms: ${samples[*]}"
echo "median: $(printf '%s\n' "${samples[@]}" | median) ms"

echo "== CPU of wg top over ${IDLE_SECS}s, one running agent, no events"
pid=$(tmux -S "$SOCK" display-message -p -t top "#{pane_pid}")  # env execs wg: the pane pid is wg top
ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
a=$(ticks); sleep "$IDLE_SECS"; b=$(ticks)
hz=$(getconf CLK_TCK)
python3 -c "print(f'cpu: {($b - $a) / $hz:.3f} s over $IDLE_SECS s = {100 * ($b - $a) / $hz / $IDLE_SECS:.2f}%')"
