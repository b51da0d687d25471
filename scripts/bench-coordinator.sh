#!/usr/bin/env bash
# Coordinator benchmarks (release build). Rerunnable; prints medians and ratios from one run.
#
#   scripts/bench-coordinator.sh
#   SIZES="1000 10000" IDLE_SECS=10 LATENCY_N=30 scripts/bench-coordinator.sh
#   BEFORE=/tmp/wg-before/wg BEFORE_SIZES="1000 10000" scripts/bench-coordinator.sh
#
# 1. Throughput: SIZES (default 1,000, 10,000 and 100,000) trivial shell tasks (`true`) through
#    `wg service start --until-done --max-agents 16`: wall time, tasks/s, time per task, the
#    coordinator's peak RSS. The floor is the same number of `true` processes started and
#    reaped 16 at a time by xargs, in the same run: the cost of a process on this machine.
#    Overhead = time per task - floor per task, and the ratio time per task / floor. The
#    coordinator's own CPU time (user + sys) per task is printed too: on a loaded machine it
#    tells flat from growing better than wall time does.
#    Targets (issue 25): time per task at 100,000 <= 1.2x at 1,000; 10,000 in <= 20 s;
#    overhead <= 1 ms per task.
# 2. Dispatch latency: from `wg add` returning to the agent's first output (a shell task
#    running `date +%s%N`), idle and with 16 agents running. Targets: median <= 2 ms / 5 ms.
# 3. Idle CPU of a coordinator with nothing to do, over IDLE_SECS (default 20). Target < 1%.
#
# Sizes above FULL_MAX (default 10,000) are measured over their first FULL_MAX tasks: the graph
# holds all of them, the coordinator is stopped (SIGKILL) once FULL_MAX are done, and time and
# CPU per task are over those. (A full run of 100,000 takes most of an hour on a loaded
# 2-core machine; the cost per task is what is compared.)
#
# With BEFORE=<another wg binary>, part 1 also runs it (on BEFORE_SIZES, default "1000 10000")
# and prints after/before ratios.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
IDLE_SECS="${IDLE_SECS:-20}"
LATENCY_N="${LATENCY_N:-30}"
SIZES="${SIZES:-1000 10000 100000}"
AGENTS="${AGENTS:-16}"
BEFORE="${BEFORE:-}"
BEFORE_SIZES="${BEFORE_SIZES:-1000 10000}"
FULL_MAX="${FULL_MAX:-10000}"

cargo build --release --quiet --manifest-path "$ROOT/Cargo.toml"
WG="$ROOT/target/release/wg"
WORK="$(mktemp -d /tmp/wg-bench-XXXXXX)"
COORD_PID=""
cleanup() {
    if [ -n "$COORD_PID" ]; then kill -9 "$COORD_PID" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT

now_ns() { echo "${EPOCHREALTIME/./}000"; }
median() { python3 -c 'import sys,statistics; v=[float(x) for x in sys.stdin.read().split()]; print(f"{statistics.median(v):.2f}")'; }
calc() { python3 -c "print($1)"; }

# N shell tasks running `true`, no dependencies.
gen_true() {
    awk -v n="$1" 'BEGIN { for (i = 0; i < n; i++) printf "{\"id\":\"t-%06d\",\"title\":\"t %d\",\"command\":[\"true\"]}\n", i, i }'
}

# The floor: N `true` processes, AGENTS at a time. Prints seconds.
floor_secs() {
    local t0 t1
    t0=$(now_ns)
    seq 1 "$1" | xargs -P "$AGENTS" -n 100 sh -c 'for _ in "$@"; do /bin/true; done' _ 2>/dev/null
    t1=$(now_ns)
    calc "($t1 - $t0) / 1e9"
}

# run_tasks WG N: prints "secs peak_rss_kb cpu_secs done_count", over all N tasks or, above
# FULL_MAX, over the first FULL_MAX.
run_tasks() {
    local wg=$1 n=$2 p="$WORK/run-$RANDOM"
    mkdir -p "$p"
    "$wg" --dir "$p" init -x shell >/dev/null
    "$wg" --dir "$p" import "$WORK/true-$n.jsonl" >/dev/null
    local t0 t1
    if [ "$n" -le "$FULL_MAX" ]; then
        t0=$(now_ns)
        /usr/bin/time -f "%M %U %S" -o "$p/rss" "$wg" --dir "$p" service start --foreground \
            --until-done --max-agents "$AGENTS" >/dev/null 2>&1
        t1=$(now_ns)
        local done_count
        done_count=$("$wg" --dir "$p" status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["counts"]["done"])')
        read -r rss user sys <"$p/rss"
        echo "$(calc "($t1 - $t0) / 1e9") $rss $(calc "$user + $sys") $done_count"
    else
        t0=$(now_ns)
        "$wg" --dir "$p" service start --foreground --daemon --max-agents "$AGENTS" >/dev/null 2>&1 &
        local pid=$! log="$p/.wg/service/coordinator.log"
        until [ -f "$log" ] && [ "$(grep -c '^.* ended agent=' "$log")" -ge "$FULL_MAX" ]; do
            sleep 0.2
        done
        t1=$(now_ns)
        local cpu rss
        cpu=$(python3 -c 'import os,sys; s=open(f"/proc/{sys.argv[1]}/stat").read(); f=s[s.rfind(")")+2:].split(); print((int(f[11])+int(f[12]))/os.sysconf("SC_CLK_TCK"))' "$pid")
        rss=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")
        kill -9 "$pid"
        wait "$pid" 2>/dev/null || true
        echo "$(calc "($t1 - $t0) / 1e9") $rss $cpu $FULL_MAX"
    fi
    rm -rf "$p"
}

echo "== throughput: trivial shell tasks (true), max_agents=$AGENTS"
printf '%-8s %8s %9s %9s %9s %10s %12s %9s %12s %10s\n' binary tasks "wall s" "tasks/s" \
    "ms/task" "floor ms" "overhead ms" "x floor" "cpu ms/task" "peak RSS"
declare -A PER_TASK CPU_TASK
for n in $SIZES; do
    gen_true "$n" >"$WORK/true-$n.jsonl"
    for which in after before; do
        if [ "$which" = before ]; then
            [ -n "$BEFORE" ] || continue
            [[ " $BEFORE_SIZES " == *" $n "* ]] || continue
            bin="$BEFORE"
        else
            bin="$WG"
        fi
        measured=$n
        [ "$n" -le "$FULL_MAX" ] || measured=$FULL_MAX
        fl=$(floor_secs "$measured")
        read -r secs rss cpu done_count < <(run_tasks "$bin" "$n")
        [ "$done_count" = "$measured" ] || echo "warning: only $done_count of $measured done" >&2
        per=$(calc "$secs * 1000 / $measured")
        floor_per=$(calc "$fl * 1000 / $measured")
        PER_TASK[$which-$n]=$per
        CPU_TASK[$which-$n]=$(calc "$cpu * 1000 / $measured")
        printf '%-8s %8d %9.2f %9.0f %9.3f %10.3f %12.3f %9.2f %12.3f %7d MB\n' "$which" "$n" \
            "$secs" "$(calc "$measured / $secs")" "$per" "$floor_per" "$(calc "$per - $floor_per")" \
            "$(calc "$per / $floor_per")" "${CPU_TASK[$which-$n]}" "$((rss / 1024))"
    done
done
first=$(echo "$SIZES" | awk '{print $1}')
last=$(echo "$SIZES" | awk '{print $NF}')
echo "time per task at $last / at $first: $(calc "round(${PER_TASK[after-$last]} / ${PER_TASK[after-$first]}, 2)") (target <= 1.2);" \
    "coordinator CPU per task: $(calc "round(${CPU_TASK[after-$last]} / ${CPU_TASK[after-$first]}, 2)")"
if [ -n "$BEFORE" ]; then
    for n in $BEFORE_SIZES; do
        if [ -n "${PER_TASK[before-$n]:-}" ] && [ -n "${PER_TASK[after-$n]:-}" ]; then
            echo "after / before at $n: time per task $(calc "round(${PER_TASK[after-$n]} / ${PER_TASK[before-$n]}, 3)")," \
                "coordinator CPU per task $(calc "round(${CPU_TASK[after-$n]} / ${CPU_TASK[before-$n]}, 3)")"
        fi
    done
fi

# latency PROJECT TAG: LATENCY_N samples of the agent's first output, in ms, counted from
# `wg add` returning (negative when the agent started before the add process had exited) and
# from just before `wg add` started (which includes the add itself).
latency() {
    local p=$1 tag=$2 out="$WORK/latency-$2.txt" whole="$WORK/latency-$2-whole.txt"
    : >"$out"
    : >"$whole"
    for i in $(seq 1 "$LATENCY_N"); do
        t_before=$(now_ns)
        "$WG" --dir "$p" add "lat $i" --id "lat-$tag-$i" --command date --command +%s%N >/dev/null
        t0=$(now_ns)
        log="$p/.wg/tasks/lat-$tag-$i/agent.log"
        for _ in $(seq 1 2000); do
            [ -s "$log" ] && break
            sleep 0.005
        done
        started=$(head -1 "$log")
        calc "($started - $t0) / 1e6" >>"$out"
        calc "($started - $t_before) / 1e6" >>"$whole"
        # Let it end, so each sample starts with the same number of running agents.
        sleep 0.1
    done
    echo "median dispatch latency ($tag): $(median <"$out") ms from wg add returning," \
        "$(median <"$whole") ms from wg add starting"
    echo "  samples from returning (ms): $(tr '\n' ' ' <"$out")"
}

echo "== dispatch latency (wg add returned -> agent's first output), $LATENCY_N samples"
P="$WORK/latency"
mkdir -p "$P"
"$WG" --dir "$P" init -x shell >/dev/null
"$WG" --dir "$P" service start --max-agents "$((AGENTS + 1))" >/dev/null
COORD_PID="$(cat "$P/.wg/service/coordinator.lock")"
latency "$P" idle
for i in $(seq 1 "$AGENTS"); do
    "$WG" --dir "$P" add "busy $i" --id "busy-$i" --command sleep --command 600 >/dev/null
done
sleep 1
latency "$P" busy

echo "== idle CPU over ${IDLE_SECS}s"
for i in $(seq 1 "$AGENTS"); do "$WG" --dir "$P" abandon "busy-$i" >/dev/null 2>&1 || true; done
stat_ticks() { python3 -c 'import sys; s=open(f"/proc/{sys.argv[1]}/stat").read(); f=s[s.rfind(")")+2:].split(); print(int(f[11])+int(f[12]))' "$1"; }
sleep 2
c0=$(stat_ticks "$COORD_PID")
sleep "$IDLE_SECS"
c1=$(stat_ticks "$COORD_PID")
hz=$(getconf CLK_TCK)
python3 -c "print(f'idle CPU: {($c1-$c0)/$hz/$IDLE_SECS*100:.3f}% of one core ({$c1-$c0} ticks in ${IDLE_SECS}s)')"
"$WG" --dir "$P" service stop >/dev/null
COORD_PID=""
