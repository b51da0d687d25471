#!/usr/bin/env bash
# A short scripted walkthrough of wg in a throwaway folder: init, add with dependencies, ready,
# done, and what becomes ready next. (Until the coordinator lands; then this becomes `wg demo`.)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
wg() { cargo run --release --quiet -- "$@"; }
DEMO="$(mktemp -d)"
trap 'rm -rf "$DEMO"' EXIT
export WG_DIR="$DEMO"
step() { printf '\n$ wg'; printf ' %q' "$@"; printf '\n'; wg "$@"; }

step init -x mock
step add "Design the API" -d "Write docs/api.md"
step add "Write the parser" --after design-the-api --priority 2
step add "Write the docs" --after design-the-api
step add "Release 0.1" --after write-the-parser --after write-the-docs
step ready
step done design-the-api
step ready
step log write-the-parser "parser handles the happy path"
step done write-the-parser
step status
step viz
step show release-0-1
printf '\nThe project lived in %s (removed now). Every task is a line in .wg/graph.jsonl.\n' "$DEMO"
