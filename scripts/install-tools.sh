#!/usr/bin/env bash
# Installs the system tools the tests drive, pinned to the versions they were written against:
# tmux (the end-to-end run of `wg top`), man-db with groff (rendering the generated man
# pages with `man -l`), Chromium with its WebDriver (the browser tests of `wg web`) and bubblewrap
# (the sandbox around every agent, docs/sandbox.md). Skips what is already installed; needs root
# and apt-get (Debian 12).
set -euo pipefail
TMUX_VERSION="${TMUX_VERSION:-3.3a-3}"
MAN_DB_VERSION="${MAN_DB_VERSION:-2.11.2-2}"
GROFF_BASE_VERSION="${GROFF_BASE_VERSION:-1.22.4-10}"
CHROMIUM_VERSION="${CHROMIUM_VERSION:-156.0.8078.129-1~deb12u1}"
BUBBLEWRAP_VERSION="${BUBBLEWRAP_VERSION:-0.8.0-2+deb12u1}"
want=()
command -v tmux >/dev/null || want+=("tmux=$TMUX_VERSION")
command -v man >/dev/null || want+=("man-db=$MAN_DB_VERSION")
command -v groff >/dev/null || command -v nroff >/dev/null || want+=("groff-base=$GROFF_BASE_VERSION")
# Debian's security archive keeps only the newest Chromium: when the pinned build has been
# replaced there, the one it offers now is installed, and its version printed below.
if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
  if apt-cache madison chromium 2>/dev/null | grep -qF " $CHROMIUM_VERSION "; then
    want+=("chromium=$CHROMIUM_VERSION" "chromium-driver=$CHROMIUM_VERSION")
  else
    echo "install-tools: chromium $CHROMIUM_VERSION is no longer offered; installing the current build" >&2
    want+=(chromium chromium-driver)
  fi
fi
command -v bwrap >/dev/null || want+=("bubblewrap=$BUBBLEWRAP_VERSION")
if [ "${#want[@]}" -gt 0 ]; then
  command -v apt-get >/dev/null || { echo "install-tools: apt-get not found; install ${want[*]} by hand" >&2; exit 1; }
  [ "$(id -u)" = 0 ] || { echo "install-tools: run as root to install ${want[*]}" >&2; exit 1; }
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${want[@]}" >&2
fi
tmux -V >&2
man --version >&2
chromium --version >&2
chromedriver --version >&2
bwrap --version >&2
