#!/usr/bin/env bash
# Installs the pinned Codex CLI from the npm registry into .tools/codex-<version>/ inside the
# repository. The native binary is used directly (it saves the Node launcher's start-up), with
# its vendor folder kept whole: bin/codex needs codex-resources/bwrap beside it for the sandbox.
# Prints the path of the native binary on stdout.
set -euo pipefail
CODEX_VERSION="${CODEX_VERSION:-0.169.0}"
root="$(cd "$(dirname "$0")/.." && pwd)"
dir="$root/.tools/codex-$CODEX_VERSION"
bin="$dir/node_modules/@openai/codex-linux-x64/vendor/x86_64-unknown-linux-musl/bin/codex"
if [ ! -x "$bin" ]; then
  command -v npm >/dev/null || { echo "install-codex: npm not found; install Node.js 20+ and npm" >&2; exit 1; }
  mkdir -p "$dir"
  (cd "$dir" && { [ -f package.json ] || npm init -y >/dev/null; } \
     && npm install --no-audit --no-fund --loglevel=error "@openai/codex@$CODEX_VERSION" >&2)
fi
[ -x "$bin" ] || { echo "install-codex: $bin missing after install" >&2; exit 1; }
"$bin" --version >&2
echo "$bin"
