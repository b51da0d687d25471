#!/usr/bin/env bash
# The whole test suite: installs the pinned codex CLI (npm), then format, lint and every test.
# Tests that need codex find it through WG_TEST_CODEX; under CI=true they fail if it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
WG_TEST_CODEX="$(./scripts/install-codex.sh)"
export WG_TEST_CODEX
cargo fmt --all -- --check
cargo clippy --all-targets --quiet -- -D warnings
cargo test --all-targets 2>&1
