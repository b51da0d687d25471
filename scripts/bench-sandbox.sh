#!/usr/bin/env bash
# What the box costs a turn: `wg handler --once` for a boxed task (bubblewrap, the proxy relay,
# the broker) against the same turn for a task with sandbox = "none", the real codex against a
# local Responses stub, with hyperfine. Each turn's command runs `wg log` through the broker
# (boxed) or straight (unboxed), so the broker's cost is in the figure. Medians over
# alternating rounds; target: boxed - unboxed <= 10 ms.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
command -v hyperfine >/dev/null || { echo "bench-sandbox: install hyperfine (apt-get install hyperfine)" >&2; exit 1; }
command -v bwrap >/dev/null || { echo "bench-sandbox: install bubblewrap (scripts/install-tools.sh)" >&2; exit 1; }
CODEX="${WG_TEST_CODEX:-$(./scripts/install-codex.sh)}"
PROFILE="${PROFILE:-release}"
if [ "$PROFILE" = release ]; then cargo build --release --quiet; else cargo build --quiet; fi
WG="$root/target/$PROFILE/wg"
RUNS="${RUNS:-10}"
ROUNDS="${ROUNDS:-2}"

# Not under /tmp: codex refuses to set up its helpers in the temp dir.
work="$(mktemp -d -p "$root/target" bench-sandbox.XXXXXX)"
cat >"$work/stub.py" <<'PY'
import json, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
def sse(items):
    out = "".join("data: %s\n\n" % json.dumps({"type": "response.output_item.done", "output_index": i, "item": it}) for i, it in enumerate(items))
    usage = {"input_tokens": 1, "input_tokens_details": {"cached_tokens": 0}, "output_tokens": 1, "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 2}
    return (out + "data: %s\n\n" % json.dumps({"type": "response.completed", "response": {"id": "r", "object": "response", "status": "completed", "output": items, "usage": usage}})).encode()
class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
        if "function_call_output" in body:
            items = [{"id": "m", "type": "message", "status": "completed", "role": "assistant", "content": [{"type": "output_text", "text": "ok", "annotations": []}]}]
        else:
            cmd = 'wg log "$WG_TASK_ID" step'
            items = [{"type": "function_call", "status": "completed", "id": "fc", "name": "exec_command", "arguments": json.dumps({"cmd": cmd}), "call_id": "c"}]
        b = sse(items)
        self.send_response(200); self.send_header("Content-Type", "text/event-stream"); self.send_header("Content-Length", str(len(b))); self.end_headers(); self.wfile.write(b)
s = ThreadingHTTPServer(("127.0.0.1", 0), H)
print(s.server_address[1], flush=True)
s.serve_forever()
PY
python3 "$work/stub.py" >"$work/port" &
stub=$!
trap 'kill $stub 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 50); do [ -s "$work/port" ] && break; sleep 0.1; done
port="$(cat "$work/port")"

mkdir -p "$work/proj" && cd "$work/proj"
export WG_API_KEY=sk-bench-not-a-secret
"$WG" init -x codex -m qwen3-coder -e "http://127.0.0.1:$port/v1" >/dev/null
"$WG" config set codex.binary "$CODEX" >/dev/null
"$WG" config set handler.request_max_retries 0 >/dev/null
"$WG" config set handler.stream_max_retries 0 >/dev/null
"$WG" config set codex.history_budget_chars 2000 >/dev/null
printf '%s\n' '{"id":"boxed","title":"Boxed"}' '{"id":"unboxed","title":"Unboxed","sandbox":"none"}' | "$WG" import - >/dev/null
for t in boxed unboxed; do "$WG" handler "$t" --once >/dev/null; done # warm-up
grep -q "sandbox=bwrap" .wg/tasks/boxed/handler.log
grep -q 'sandbox="none (unboxed)"' .wg/tasks/unboxed/handler.log

for round in $(seq "$ROUNDS"); do
  a=(-n boxed "'$WG' handler boxed --once >/dev/null")
  b=(-n unboxed "'$WG' handler unboxed --once >/dev/null")
  if [ $((round % 2)) -eq 0 ]; then first=("${b[@]}"); second=("${a[@]}"); else first=("${a[@]}"); second=("${b[@]}"); fi
  hyperfine --warmup 1 --runs "$RUNS" --export-json "$work/hf-$round.json" \
    --prepare "'$WG' msg boxed next >/dev/null 2>&1; '$WG' msg unboxed next >/dev/null 2>&1" \
    "${first[@]}" "${second[@]}" >&2
done
python3 - "$work"/hf-*.json <<'PY'
import json, statistics, sys
t = {}
for f in sys.argv[1:]:
    for r in json.load(open(f))["results"]:
        t.setdefault(r["command"], []).extend(r["times"])
b, u = statistics.median(t["boxed"]), statistics.median(t["unboxed"])
print(f"median over {len(t['boxed'])} turns each: boxed {b*1000:.1f} ms, unboxed {u*1000:.1f} ms, "
      f"ratio {b/u:.3f}, difference {(b-u)*1000:+.1f} ms (target <= +10 ms)")
PY
