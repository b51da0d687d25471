#!/usr/bin/env bash
# Store benchmark: medians of `wg add` at 1k / 10k / 100k tasks, `wg ready --json` at 10k and
# 100k, and `wg import` of 100k tasks, on a release build. Rerunnable; prints a table and
# writes the hyperfine JSON exports to target/bench-store/.
#
# Targets (issue 2): add at 10k <= 3 ms; add at 100k <= 2x add at 1k;
# ready --json <= 30 ms at 10k and <= 300 ms at 100k; import of 100k <= 3 s.
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

printf '%-34s %10s   %s\n' "command" "median ms" "target"
printf '%-34s %10s   %s\n' "wg --version (process floor)" "${RESULT[version]}" "-"
printf '%-34s %10s   %s\n' "wg add (1,000 tasks)" "${RESULT[add-1000]}" "-"
printf '%-34s %10s   %s\n' "wg add (10,000 tasks)" "${RESULT[add-10000]}" "<= 3"
printf '%-34s %10s   %s\n' "wg add (100,000 tasks)" "${RESULT[add-100000]}" \
    "<= $(echo "${RESULT[add-1000]} * 2" | bc -l | xargs printf '%.2f') (2x the 1,000 figure)"
printf '%-34s %10s   %s\n' "wg ready --json (10,000 tasks)" "${RESULT[ready-10000]}" "<= 30"
printf '%-34s %10s   %s\n' "wg ready --json (100,000 tasks)" "${RESULT[ready-100000]}" "<= 300"
printf '%-34s %10s   %s\n' "wg import (100,000 tasks)" "${RESULT[import-100000]}" "<= 3000"
