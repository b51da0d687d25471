#!/usr/bin/env bash
# Per-turn wall time of `wg handler --once` against a local Responses stub, side by side with
# bare `codex exec` given the same flags (taken from handler.log's spawn line) and a prompt of
# the same size, with hyperfine. Target: handler / bare <= 1.10. Also runs the prompt bench.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
command -v hyperfine >/dev/null || { echo "bench-handler: install hyperfine (apt-get install hyperfine)" >&2; exit 1; }
CODEX="${WG_TEST_CODEX:-$(./scripts/install-codex.sh)}"
cargo build --release --quiet
WG="$root/target/release/wg"
RUNS="${RUNS:-15}"

# Not under /tmp: codex refuses to set up its helpers in the temp dir.
work="$(mktemp -d -p "$root/target" bench-handler.XXXXXX)"
portfile="$work/port"
python3 "$root/scripts/sse-stub.py" 0 >"$portfile" &
stub=$!
trap 'kill $stub 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 50); do [ -s "$portfile" ] && break; sleep 0.1; done
port="$(cat "$portfile")"

mkdir -p "$work/proj" && cd "$work/proj"
export WG_API_KEY=sk-bench-not-a-secret
"$WG" init -x codex -m qwen3-coder -e "http://127.0.0.1:$port/v1" >/dev/null
"$WG" config set codex.binary "$CODEX" >/dev/null
"$WG" config set handler.request_max_retries 0 >/dev/null
"$WG" config set handler.stream_max_retries 0 >/dev/null
# A small history budget keeps the prompt the same size however many turns the bench adds.
"$WG" config set codex.history_budget_chars 2000 >/dev/null
"$WG" add "Bench" >/dev/null
"$WG" handler bench >/dev/null # warm-up: CODEX_HOME set-up, version cache
"$WG" msg bench "warm up again" 2>/dev/null >/dev/null
"$WG" handler bench >/dev/null

# The exact codex argv and prompt size of the last turn, from handler.log.
# codex is pointed at the handler's credential proxy, which is gone after the turn: bare codex
# talks to the stub itself, with the key (the proxy's cost is part of what is measured).
read -r chars argv < <(python3 - .wg/tasks/bench/handler.log "$port" <<'PY'
import json, re, sys
lines = open(sys.argv[1]).read().splitlines()
spawn = [l for l in lines if " spawn argv=" in l][-1]
start = [l for l in lines if " turn.start " in l][-1]
argv = json.loads(re.search(r' argv=("(?:[^"\\]|\\.)*")', spawn).group(1))
argv = re.sub(r'(model_providers\.wg\.base_url=\W*http://127\.0\.0\.1:)\d+',
              lambda m: m.group(1) + sys.argv[2], argv).replace("WG_PROXY_TOKEN", "WG_API_KEY")
chars = re.search(r' prompt_chars=(\d+)', start).group(1)
print(chars, json.dumps(argv))
PY
)
argv="$(python3 -c 'import json,sys; print(json.loads(sys.argv[1]))' "$argv")"
python3 -c "import sys; sys.stdout.write('x' * int(sys.argv[1]))" "$chars" >"$work/prompt.txt"
export CODEX_HOME="$work/proj/.wg/codex-home"

# Other work on the machine drifts over a run, and hyperfine measures its commands one after
# the other; so the two commands run in alternating rounds (order swapped each round) and the
# medians are taken over all rounds. The same prepare step (queueing the next message) runs
# before both, so both see the same disk activity.
ROUNDS="${ROUNDS:-3}"
for round in $(seq "$ROUNDS"); do
  a=(-n "wg handler --once" "'$WG' handler bench --once >/dev/null")
  b=(-n "bare codex exec" "$argv <'$work/prompt.txt' >/dev/null 2>&1")
  if [ $((round % 2)) -eq 0 ]; then first=("${b[@]}"); second=("${a[@]}"); else first=("${a[@]}"); second=("${b[@]}"); fi
  hyperfine --warmup 2 --runs "$RUNS" --export-json "$work/hf-$round.json" \
    --prepare "'$WG' msg bench 'next question' >/dev/null 2>&1" "${first[@]}" "${second[@]}"
done
python3 - "$work"/hf-*.json <<'PY'
import json, statistics, sys
times = {}
for f in sys.argv[1:]:
    for r in json.load(open(f))["results"]:
        times.setdefault(r["command"], []).extend(r["times"])
h = statistics.median(times["wg handler --once"])
b = statistics.median(times["bare codex exec"])
n = len(times["bare codex exec"])
print(f"median over {n} runs each: wg handler --once {h*1000:.1f} ms, bare codex exec {b*1000:.1f} ms, ratio {h/b:.3f} (target <= 1.10)")
PY
cd "$root" && cargo bench --quiet --bench prompt
