#!/usr/bin/env bash
# Merge queue throughput (docs/landing.md): TASKS (20) small independent worktree tasks, each
# adding its own file, land through `workspace.merge = "queue"` with checks that take
# CHECK_SECS (1 s). Prints, as medians over RUNS (3) runs:
#   - queue wall time: from the first landing's start to the last one's end (coordinator.log);
#   - one landing (merge in a scratch worktree + check + compare-and-swap), median;
#   - the floor: TASKS x (merge + check) done by hand with the same git commands and the
#     same check, one after the other, in a project of the same shape;
#   - their ratio. About 1 means the queue adds nothing over merging and checking one by one;
#   - the same queue with `workspace.land_batch = BATCH` (4): queued tasks merged in turn and
#     checked once, and its ratio to the floor.
#
#   scripts/bench-queue.sh
#   WG=target/debug/wg RUNS=1 scripts/bench-queue.sh     # skip the release build
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
TASKS="${TASKS:-20}"
RUNS="${RUNS:-3}"
CHECK_SECS="${CHECK_SECS:-1}"
BATCH="${BATCH:-4}"
if [ -z "${WG:-}" ]; then
    cargo build --release --quiet --manifest-path "$ROOT/Cargo.toml"
    WG="$ROOT/target/release/wg"
fi
WG="$(cd "$(dirname "$WG")" && pwd)/$(basename "$WG")"
WORK="$(mktemp -d /tmp/wg-bench-queue-XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
export GIT_CONFIG_GLOBAL="$WORK/gitconfig" GIT_CONFIG_NOSYSTEM=1
printf '[user]\n\tname = bench\n\temail = bench@localhost\n' >"$GIT_CONFIG_GLOBAL"

new_repo() { # dir
    mkdir -p "$1"
    git -C "$1" init -q -b main
    echo ".wg/" >"$1/.gitignore"
    git -C "$1" add .gitignore
    git -C "$1" commit -qm init
}

# Wall seconds of one queue run; per-landing seconds appended to $WORK/landings.
queue_run() { # dir batch
    local p="$1"
    new_repo "$p"
    (cd "$p" && "$WG" init -x shell >/dev/null)
    for kv in workspace.mode=worktree workspace.merge=queue coordinator.poll_interval=200ms \
        coordinator.max_agents=4 coordinator.max_retries=0 "workspace.land_batch=$2"; do
        (cd "$p" && "$WG" config set "${kv%%=*}" "${kv#*=}" >/dev/null)
    done
    printf '\n[checks]\ncommands = ["sleep %s"]\n' "$CHECK_SECS" >>"$p/.wg/config.toml"
    for i in $(seq 1 "$TASKS"); do
        (cd "$p" && "$WG" add "t$i" --id "t$i" --command sh --command -c \
            --command "echo $i > f$i.txt && git add f$i.txt && git commit -qm t$i && wg done \"\$WG_TASK_ID\"" >/dev/null)
    done
    (cd "$p" && "$WG" service start --foreground --until-done >/dev/null 2>&1)
    local landed
    landed="$(git -C "$p" log --first-parent --format=%s main | grep -c '^wg: land ' || true)"
    if [ "$landed" != "$TASKS" ]; then
        echo "bench-queue: only $landed of $TASKS tasks landed; see $p/.wg/service/coordinator.log" >&2
        trap - EXIT
        exit 1
    fi
    python3 - "$p/.wg/service/coordinator.log" "$WORK/landings-$2" <<'PY'
import re, sys, datetime
def ts(line):
    return datetime.datetime.fromisoformat(line.split(" ", 1)[0].replace("Z", "+00:00")).timestamp()
start, end = {}, {}
for line in open(sys.argv[1]):
    m = re.search(r" land task=(\S+):", line)
    for t in (m.group(1).split(",") if m else []):
        start.setdefault(t, ts(line))
    m = re.search(r" landed task=(\S+) ", line)
    if m:
        end[m.group(1)] = ts(line)
with open(sys.argv[2], "a") as f:
    for t in end:
        f.write(f"{end[t] - start[t]:.4f}\n")
print(f"{max(end.values()) - min(start.values()):.3f}")
PY
}

# Wall seconds of TASKS merges and checks by hand, one after the other.
floor_run() { # dir
    local p="$1"
    new_repo "$p"
    for i in $(seq 1 "$TASKS"); do
        git -C "$p" checkout -q -b "b$i" main
        echo "$i" >"$p/f$i.txt"
        git -C "$p" add "f$i.txt"
        git -C "$p" commit -qm "b$i"
    done
    git -C "$p" checkout -q main
    mkdir -p "$p/.wg/worktrees"
    python3 - "$p" "$TASKS" "$CHECK_SECS" <<'PY'
import subprocess, sys, time
p, n, check = sys.argv[1], int(sys.argv[2]), sys.argv[3]
def git(*a, cwd=p):
    subprocess.run(["git", "-C", cwd, *a], check=True, stdout=subprocess.DEVNULL)
t0 = time.monotonic()
for i in range(1, n + 1):
    old = subprocess.run(["git", "-C", p, "rev-parse", "main"], capture_output=True, text=True).stdout.strip()
    s = f"{p}/.wg/worktrees/.land-{i}"
    git("worktree", "add", "--quiet", "--detach", s, old)
    git("merge", "--no-ff", "--no-edit", "--quiet", "-m", f"land b{i}", f"b{i}", cwd=s)
    subprocess.run(["sh", "-c", f"sleep {check}"], cwd=s, check=True)
    new = subprocess.run(["git", "-C", s, "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    git("worktree", "remove", "--force", s)
    git("update-ref", "refs/heads/main", new, old)
    git("read-tree", "-m", "-u", old, new)
print(f"{time.monotonic() - t0:.3f}")
PY
}

median() { python3 -c 'import sys,statistics; v=[float(x) for x in sys.stdin.read().split()]; print(f"{statistics.median(v):.3f}")'; }

queue_walls=()
batch_walls=()
floor_walls=()
for r in $(seq 1 "$RUNS"); do
    queue_walls+=("$(queue_run "$WORK/q$r" 1)")
    batch_walls+=("$(queue_run "$WORK/b$r" "$BATCH")")
    floor_walls+=("$(floor_run "$WORK/f$r")")
done
q="$(printf '%s\n' "${queue_walls[@]}" | median)"
b="$(printf '%s\n' "${batch_walls[@]}" | median)"
f="$(printf '%s\n' "${floor_walls[@]}" | median)"
one="$(median <"$WORK/landings-1")"
echo "merge queue: $TASKS tasks, checks of ${CHECK_SECS}s, $RUNS run(s), $(basename "$(dirname "$WG")") build"
echo "  queue wall (first landing start -> last landed), median: ${q}s  (runs: ${queue_walls[*]})"
echo "  one landing (merge + check + swap), median:              ${one}s"
echo "  floor: $TASKS x (merge + check) by hand, median:           ${f}s  (runs: ${floor_walls[*]})"
echo "  queue with land_batch = $BATCH, median:                     ${b}s  (runs: ${batch_walls[*]})"
python3 - "$q" "$f" "$one" "$CHECK_SECS" "$b" <<'PY'
import sys
q, f, one, check, b = (float(x) for x in sys.argv[1:])
print(f"  queue / floor: {q / f:.2f}; batched / floor: {b / f:.2f}; the check is {check / one:.0%} of a landing")
PY
