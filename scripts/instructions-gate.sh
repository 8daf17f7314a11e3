#!/usr/bin/env bash
# instructions-gate.sh: the hot paths' instruction counts (benches/hot_paths_instructions.rs,
# callgrind through gungraun) against a saved baseline; fails beyond LIMIT.
#
#   scripts/instructions-gate.sh save NAME            run the benches, save them as NAME
#   scripts/instructions-gate.sh check NAME [LIMIT]   run them again, compare against NAME;
#                                                     LIMIT defaults to 1.5%
#
# Typical CI use: check out the base revision, `save base`; check out the head, `check
# base`. Instruction counts are deterministic for a given binary (measured: the same
# binary twice differed by 0 instructions on every bench, see README), so 1.5% is well
# above the noise and far below criterion's 5-10%.
#
# Needs valgrind (Debian: apt-get install valgrind) and gungraun-runner of the version
# Cargo.lock pins for the gungraun crate; it is installed under $CARGO_TARGET_DIR/gungraun
# when missing (a cargo build of about 3 minutes on 2 cores).
# Exit codes: 0 no regression; 1 regression beyond LIMIT; 2 usage or setup error.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() { sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
[[ $# -ge 2 && $# -le 3 ]] || usage
mode=$1 name=$2 limit=${3:-1.5%}
case "$mode" in save|check) ;; *) usage ;; esac
[[ "$name" =~ ^[A-Za-z0-9_-]+$ ]] || { echo "instructions-gate: baseline name must be letters, digits, - or _, got '$name'" >&2; exit 2; }
[[ "$limit" =~ ^[0-9]+(\.[0-9]+)?%$ ]] || { echo "instructions-gate: LIMIT must be a percentage like 1.5%, got '$limit'" >&2; exit 2; }
command -v valgrind >/dev/null || { echo "instructions-gate: valgrind is not installed (apt-get install valgrind)" >&2; exit 2; }

target=${CARGO_TARGET_DIR:-$PWD/target}
version=$(awk '/^name = "gungraun"$/ {getline; gsub(/[^0-9.]/, ""); print; exit}' Cargo.lock)
[ -n "$version" ] || { echo "instructions-gate: no gungraun in Cargo.lock" >&2; exit 2; }
runner="$target/gungraun/bin/gungraun-runner"
if ! [ -x "$runner" ] || ! "$runner" --version 2>/dev/null | grep -q "$version"; then
    echo "instructions-gate: installing gungraun-runner $version" >&2
    CARGO_TARGET_DIR="$target/gungraun-build" cargo install --quiet --locked \
        --version "$version" --root "$target/gungraun" gungraun-runner || exit 2
fi
export GUNGRAUN_RUNNER="$runner"

bench() { cargo bench --locked --quiet --bench hot_paths_instructions -- "$@"; }
if [ "$mode" = save ]; then
    bench --save-baseline="$name" || exit 2
    exit 0
fi
set +e
bench --baseline="$name" --callgrind-limits="ir=$limit"
code=$?
set -e
# gungraun exits 3 when a limit is exceeded; anything else non-zero is a setup error.
case $code in
    0) echo "instructions-gate: no bench above +$limit instructions" >&2; exit 0 ;;
    3) echo "instructions-gate: regression: a bench is above +$limit instructions" >&2; exit 1 ;;
    *) echo "instructions-gate: the benches failed (exit $code)" >&2; exit 2 ;;
esac
