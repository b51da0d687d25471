#!/usr/bin/env bash
# Store benchmark: medians of `wg add` at 1k / 10k / 100k tasks, `wg ready --json` at 10k and
# 100k, `wg import` of 100k tasks, and the read commands people run on a big graph (`wg list`,
# `wg show`, `wg top --once`, `wg status`) at 100k, on a release build. Rerunnable; prints a
# table and writes the hyperfine JSON exports to target/bench-store/.
#
# Targets (issue 2): add at 10k <= 3 ms; add at 100k <= 2x add at 1k; import of 100k <= 3 s.
# Targets (issue 25), at 100k: import <= 0.5 s; ready --json <= 50 ms; list, show, top --once
# and status <= 100 ms each.
#
# With BEFORE=<another wg binary>, the 100k read commands and the import also run with it, on
# the same project, and the table gets an after/before ratio column.
#
# Needs hyperfine and jq (Debian/Ubuntu: apt-get install -y hyperfine jq).
set -euo pipefail
cd "$(dirname "$0")/.."

for tool in hyperfine jq; do
    if ! command -v "$tool" >/dev/null; then
        if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
            apt-get install -y "$tool" >/dev/null
        else
            echo "error: $tool is missing; install it (e.g. apt-get install -y $tool)" >&2
            exit 1
        fi
    fi
done

cargo build --release --quiet
WG="$PWD/target/release/wg"
OUT="$PWD/target/bench-store"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$OUT"
# Overridable for a quick look: RUNS=20 ./scripts/bench-store.sh
RUNS="${RUNS:-100}"

# N tasks in chains of 10 (each depends on the previous one in its chain), a third of them
# done, so `ready` has real dependency checks to make.
gen() {
    awk -v n="$1" 'BEGIN {
        for (i = 0; i < n; i++) {
            after = (i % 10 == 0) ? "" : sprintf(",\"after\":[\"t-%d\"]", i - 1)
            status = (i % 3 == 0) ? ",\"status\":\"done\"" : ""
            printf "{\"title\":\"Task %d\",\"id\":\"t-%d\"%s%s,\"description\":\"benchmark task %d\"}\n", i, i, after, status, i
        }
    }'
}

project() { # project DIR N: a project holding N imported tasks
    mkdir -p "$1"
    (cd "$1" && "$WG" init -x mock >/dev/null && gen "$2" | "$WG" import - >/dev/null)
}

# Median in ms over every run of every benchmark in a hyperfine export.
median_ms() {
    jq -r '[.results[].times[]] | sort | (if length % 2 == 1 then .[length / 2 | floor]
        else (.[length / 2 - 1] + .[length / 2]) / 2 end) * 100000 | round / 100' "$1"
}

declare -A RESULT
# The floor: starting the binary at all (this machine's process start-up and noise).
hyperfine -N --warmup 5 --runs "$RUNS" --export-json "$OUT/version.json" "$WG --version" >/dev/null
RESULT[version]="$(median_ms "$OUT/version.json")"
for n in 1000 10000 100000; do
    project "$WORK/p$n" "$n"
    # Each measured run adds a task with a new title, so it is a plain add with a fresh
    # id (not a search through bench-task-2, -3, ...): one hyperfine run per title, and the
    # median over all of them.
    for i in 1 2 3 4 5; do "$WG" --dir "$WORK/p$n" add "Warm up $i" >/dev/null; done
    hyperfine -N --runs 1 --parameter-scan i 1 "$RUNS" --export-json "$OUT/add-$n.json" \
        "$WG --dir $WORK/p$n add 'Bench task {i}' --after t-1" >/dev/null
    RESULT[add-$n]="$(median_ms "$OUT/add-$n.json")"
done
for n in 10000 100000; do
    hyperfine -N --warmup 3 --runs 20 --export-json "$OUT/ready-$n.json" \
        "$WG --dir $WORK/p$n ready --json" >/dev/null
    RESULT[ready-$n]="$(median_ms "$OUT/ready-$n.json")"
done
gen 100000 >"$WORK/100k.jsonl"
hyperfine --runs 5 --export-json "$OUT/import-100000.json" \
    --prepare "rm -rf $WORK/imp && mkdir $WORK/imp && cd $WORK/imp && $WG init -x mock >/dev/null" \
    "$WG --dir $WORK/imp import $WORK/100k.jsonl" >/dev/null
RESULT[import-100000]="$(median_ms "$OUT/import-100000.json")"

# The read commands at 100k (10,000 of them ready), and the import, for this binary and BEFORE.
BEFORE="${BEFORE:-}"
READS=("ready --json" "list" "show t-50001" "top --once" "status")
bins=(after)
[ -n "$BEFORE" ] && bins+=(before)
for which in "${bins[@]}"; do
    bin="$WG"
    [ "$which" = before ] && bin="$BEFORE"
    for cmd in "${READS[@]}"; do
        key="$which-${cmd%% *}"
        hyperfine -N --warmup 3 --runs 20 --export-json "$OUT/$key.json" \
            "$bin --dir $WORK/p100000 $cmd" >/dev/null
        RESULT[$key]="$(median_ms "$OUT/$key.json")"
    done
    hyperfine --runs 5 --export-json "$OUT/$which-import.json" \
        --prepare "rm -rf $WORK/imp && mkdir $WORK/imp && cd $WORK/imp && $bin init -x mock >/dev/null" \
        "$bin --dir $WORK/imp import $WORK/100k.jsonl" >/dev/null
    RESULT[$which-import]="$(median_ms "$OUT/$which-import.json")"
    /usr/bin/time -f "%M" -o "$WORK/rss" "$bin" --dir "$WORK/p100000" list >/dev/null
    RESULT[$which-list-rss]="$(( $(cat "$WORK/rss") / 1024 ))"
done

printf '%-34s %10s   %s\n' "command" "median ms" "target"
printf '%-34s %10s   %s\n' "wg --version (process floor)" "${RESULT[version]}" "-"
printf '%-34s %10s   %s\n' "wg add (1,000 tasks)" "${RESULT[add-1000]}" "-"
printf '%-34s %10s   %s\n' "wg add (10,000 tasks)" "${RESULT[add-10000]}" "<= 3"
printf '%-34s %10s   %s\n' "wg add (100,000 tasks)" "${RESULT[add-100000]}" \
    "<= $(echo "${RESULT[add-1000]} * 2" | bc -l | xargs printf '%.2f') (2x the 1,000 figure)"
printf '%-34s %10s   %s\n' "wg ready --json (10,000 tasks)" "${RESULT[ready-10000]}" "<= 30"
printf '%-34s %10s   %s\n' "wg ready --json (100,000 tasks)" "${RESULT[ready-100000]}" "<= 300"
printf '%-34s %10s   %s\n' "wg import (100,000 tasks)" "${RESULT[import-100000]}" "<= 3000"

echo
echo "at 100,000 tasks (10,000 ready); store file $(( $(stat -c %s "$WORK/p100000/.wg/graph.jsonl") / 1048576 )) MB"
# user + sys (mean): on a loaded machine, what the command itself costs.
cpu_ms() { jq -r '(.results[0].user + .results[0].system) * 1000 | round' "$1"; }
printf '%-22s %10s %10s %8s %9s %9s   %s\n' "command" "median ms" "before ms" "ratio" \
    "cpu ms" "cpu bef" "target"
for row in "ready:ready --json:50" "list:list:100" "show:show t-50001:100" "top:top --once:100" \
    "status:status:100" "import:import 100,000:500"; do
    IFS=: read -r key label target <<<"$row"
    after="${RESULT[after-$key]}"
    before="${RESULT[before-$key]:-}"
    ratio="-"
    [ -n "$before" ] && ratio="$(echo "$after / $before" | bc -l | xargs printf '%.2f')"
    cpu_before="-"
    [ -n "$before" ] && cpu_before="$(cpu_ms "$OUT/before-$key.json")"
    printf '%-22s %10s %10s %8s %9s %9s   <= %s\n' "wg $label" "$after" "${before:--}" "$ratio" \
        "$(cpu_ms "$OUT/after-$key.json")" "$cpu_before" "$target"
done
echo "peak RSS of wg list at 100,000: ${RESULT[after-list-rss]} MB${RESULT[before-list-rss]:+ (before: ${RESULT[before-list-rss]} MB)}"
