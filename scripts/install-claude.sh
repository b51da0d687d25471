#!/usr/bin/env bash
# Installs the pinned Claude Code CLI from the npm registry into .tools/claude-<version>/ inside
# the repository. The platform package's native binary is used directly: it needs no Node at run
# time, and it works even when the postinstall that links bin/claude.exe did not run.
# Prints the path of the native binary on stdout.
set -euo pipefail
CLAUDE_VERSION="${CLAUDE_VERSION:-2.1.330}"
root="$(cd "$(dirname "$0")/.." && pwd)"
dir="$root/.tools/claude-$CLAUDE_VERSION"
bin="$dir/node_modules/@anthropic-ai/claude-code-linux-x64/claude"
if [ ! -x "$bin" ]; then
  command -v npm >/dev/null || { echo "install-claude: npm not found; install Node.js 20+ and npm" >&2; exit 1; }
  mkdir -p "$dir"
  # The package asks for Node 22 in "engines"; only its postinstall runs under Node, so the
  # EBADENGINE warning on Node 20 does not matter.
  (cd "$dir" && { [ -f package.json ] || npm init -y >/dev/null; } \
     && npm install --no-audit --no-fund --loglevel=error "@anthropic-ai/claude-code@$CLAUDE_VERSION" >&2)
fi
[ -x "$bin" ] || { echo "install-claude: $bin missing after install" >&2; exit 1; }
"$bin" --version >&2
echo "$bin"
