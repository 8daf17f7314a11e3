#!/usr/bin/env bash
# ci-regression.sh: does HEAD_REV make feedbench's measurements worse than BASE_REV?
#
# Usage: scripts/ci-regression.sh BASE_REV [HEAD_REV]      (HEAD_REV defaults to HEAD)
#
# Builds both revisions in separate git worktrees (release), then runs the quick suite
# with the two binaries interleaved, A B A B ..., each against its own embedded server on
# this machine, so drift of the machine (thermal, noisy neighbours) hits both alike.
# Finally `feedbench compare` (HEAD_REV's binary) pools each side's rounds as repeats,
# prints the Markdown table and this script exits with compare's code:
#   0 no regression, 1 regression, 2 usage, build or run error.
#
# Environment (all optional):
#   ROUNDS=2               interleaved rounds per binary
#   SUITE=quick            suite passed to `feedbench run --suite`
#   RUN_TIMEOUT=300        seconds allowed for one suite run
#   BUILD_TIMEOUT=1800     seconds allowed for one release build
#   OUT=bench-results/ci-regression   where runs and compare outputs are kept
#   CARGO_TARGET_DIR       shared build directory (default: inside the temp dir); point it
#                          at a cached directory to reuse dependency builds between CI runs
#   COMPARE_ARGS           extra arguments for `feedbench compare`, e.g. "--strict"
#   KEEP_WORKTREES=1       keep the temp dir with the worktrees for inspection
set -euo pipefail

usage() {
    sed -n '2,23p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

[[ $# -ge 1 && $# -le 2 ]] || usage
[[ "$1" == -h || "$1" == --help ]] && usage
base_rev=$1
head_rev=${2:-HEAD}
rounds=${ROUNDS:-2}
suite=${SUITE:-quick}
run_timeout=${RUN_TIMEOUT:-300}
build_timeout=${BUILD_TIMEOUT:-1800}

repo=$(git rev-parse --show-toplevel)
out=${OUT:-$repo/bench-results/ci-regression}
base_sha=$(git -C "$repo" rev-parse --verify --quiet "$base_rev^{commit}") || { echo "ci-regression: unknown revision $base_rev" >&2; exit 2; }
head_sha=$(git -C "$repo" rev-parse --verify --quiet "$head_rev^{commit}") || { echo "ci-regression: unknown revision $head_rev" >&2; exit 2; }

work=$(mktemp -d "${TMPDIR:-/tmp}/feedbench-ci.XXXXXX")
cleanup() {
    if [[ -z "${KEEP_WORKTREES:-}" ]]; then
        git -C "$repo" worktree remove --force "$work/base" 2>/dev/null || true
        git -C "$repo" worktree remove --force "$work/head" 2>/dev/null || true
        rm -rf "$work"
    else
        echo "ci-regression: kept $work" >&2
    fi
}
trap cleanup EXIT

log() { echo "ci-regression: $*" >&2; }

export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$work/target}
mkdir -p "$work/bin"

# Builds one revision and copies its binary out, since both builds share a target dir.
build() {
    local side=$1 sha=$2
    log "building $side ($sha)"
    git -C "$repo" worktree add --quiet --detach "$work/$side" "$sha"
    (cd "$work/$side" && timeout "$build_timeout" cargo build --release --locked --quiet --bin feedbench) || {
        log "build of $side ($sha) failed or timed out"
        exit 2
    }
    cp "$CARGO_TARGET_DIR/release/feedbench" "$work/bin/feedbench-$side"
}

build base "$base_sha"
build head "$head_sha"

rm -rf "$out"
mkdir -p "$out/base" "$out/head"

# One suite run; each binary starts and stops its own embedded server.
run() {
    local side=$1 round=$2
    log "round $round/$rounds: $side"
    timeout --kill-after=30 "$run_timeout" "$work/bin/feedbench-$side" run --suite "$suite" \
        --out "$out/$side/round-$round" >"$out/$side/round-$round.log" 2>&1 || {
        log "$side round $round failed or timed out; its log:"
        tail -n 40 "$out/$side/round-$round.log" >&2
        exit 2
    }
}

for ((round = 1; round <= rounds; round++)); do
    run base "$round"
    run head "$round"
done

status=0
# shellcheck disable=SC2086 # COMPARE_ARGS is a list of flags on purpose.
"$work/bin/feedbench-head" compare "$out/base" "$out/head" \
    --md "$out/compare.md" --json "$out/benchmark.json" --bmf "$out/bmf.json" \
    ${COMPARE_ARGS:-} || status=$?
log "base $base_sha, head $head_sha: compare exited $status; outputs in $out"
exit "$status"
