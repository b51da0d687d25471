#!/usr/bin/env bash
# The whole test suite: installs the pinned codex and Claude Code CLIs (npm) and the pinned
# tmux and man-db (apt), then format, lint and every test. Tests that need the CLIs find them
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
cargo fmt --all -- --check
cargo clippy --all-targets --quiet -- -D warnings
cargo test --all-targets 2>&1
