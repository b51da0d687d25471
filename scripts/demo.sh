#!/usr/bin/env bash
# The main job: builds wg and runs `wg demo` — a throwaway project with a dozen-task fan-out /
# fan-in graph, run to the end by the coordinator with the mock executor (no API key, no
# network). Extra arguments go to `wg demo`, e.g. `-x codex -m qwen3-coder -e URL` for real agents.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
exec ./target/release/wg demo "$@"
