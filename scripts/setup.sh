#!/usr/bin/env bash
# Installs what feedbench's build, tests and scripts need on a fresh Debian machine, and
# nothing when it is already there. Safe to run again. Needs root (or sudo) only when a
# package is missing.
#
#   chromium            headless browser for the report's end-to-end test
#   fonts-dejavu-core   the font the report embeds (its copy ships in report/assets)
#   wrk, nginx          reference tools for scripts/bench-*.sh
set -euo pipefail

need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
[ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || need+=(fonts-dejavu-core)
if [ "${FEEDBENCH_SETUP_BENCH_TOOLS:-0}" = 1 ]; then
  command -v wrk >/dev/null 2>&1 || need+=(wrk)
  command -v nginx >/dev/null 2>&1 || need+=(nginx)
fi

if [ ${#need[@]} -gt 0 ]; then
  echo "setup: installing ${need[*]}" >&2
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

command -v cargo >/dev/null 2>&1 || { echo "setup: cargo not found; install Rust (rustup) first" >&2; exit 2; }
