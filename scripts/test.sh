#!/usr/bin/env bash
# The whole test suite: installs the pinned codex and Claude Code CLIs (npm), then format, lint
# and every test. Tests that need them find them through WG_TEST_CODEX and WG_TEST_CLAUDE; under
# CI=true they fail if one is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
WG_TEST_CODEX="$(./scripts/install-codex.sh)"
export WG_TEST_CODEX
WG_TEST_CLAUDE="$(./scripts/install-claude.sh)"
export WG_TEST_CLAUDE
if ./scripts/slurm-up.sh; then
  export WG_TEST_SLURM=1
elif [ "${CI:-}" = "true" ]; then
  echo "test.sh: the Slurm tests need a cluster and scripts/slurm-up.sh could not start one" >&2
  exit 1
fi
cargo fmt --all -- --check
cargo clippy --all-targets --quiet -- -D warnings
cargo test --all-targets 2>&1
