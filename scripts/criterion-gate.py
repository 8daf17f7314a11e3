#!/usr/bin/env python3
"""criterion-gate: fail when a criterion benchmark got slower than a threshold.

criterion prints "Performance has regressed" but exits 0, so CI cannot stop on it. After
`cargo bench -- --baseline NAME` (or any second run) criterion writes, per benchmark,
target/criterion/<group>/<bench>/change/estimates.json: the relative change of the mean
and median with a confidence interval (0.05 means 5% slower). This script reads them all.

A benchmark fails the gate when its change's point estimate is above the threshold AND
the whole confidence interval is above zero (criterion is confident it is slower at all).

Usage: scripts/criterion-gate.py [--threshold 5%] [--statistic mean|median]
                                 [--criterion-dir target/criterion]
Exit codes: 0 no regression, 1 regression, 2 usage error or no change estimates found
(run the benches against a saved baseline first).
"""

import argparse
import json
import os
import sys


def percent(text):
    """'5%', '5' and '0.5%' are percentages; returns a fraction."""
    try:
        value = float(text.strip().rstrip("%"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a percentage like 5%")
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must not be negative")
    return value / 100.0


def find_estimates(root):
    """Yields (benchmark id, path) for every change/estimates.json under root."""
    for dirpath, _dirs, files in os.walk(root):
        if os.path.basename(dirpath) == "change" and "estimates.json" in files:
            bench_dir = os.path.dirname(dirpath)
            # criterion also writes a summary per group under 'report'; only real benches.
            bench_id = os.path.relpath(bench_dir, root)
            yield bench_id, os.path.join(dirpath, "estimates.json")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threshold", type=percent, default=percent("5%"),
                        help="largest slowdown allowed (default 5%%)")
    parser.add_argument("--statistic", choices=["mean", "median"], default="mean",
                        help="which estimate to judge (default mean)")
    parser.add_argument("--criterion-dir", default=os.path.join("target", "criterion"),
                        help="criterion's output directory (default target/criterion)")
    args = parser.parse_args()

    if not os.path.isdir(args.criterion_dir):
        print(f"criterion-gate: {args.criterion_dir} does not exist: run `cargo bench` first",
              file=sys.stderr)
        return 2
    rows = []
    for bench_id, path in sorted(find_estimates(args.criterion_dir)):
        try:
            with open(path, encoding="utf-8") as f:
                estimate = json.load(f)[args.statistic]
            point = float(estimate["point_estimate"])
            lower = float(estimate["confidence_interval"]["lower_bound"])
            upper = float(estimate["confidence_interval"]["upper_bound"])
        except (OSError, KeyError, TypeError, ValueError) as e:
            print(f"criterion-gate: cannot read {path}: {e}", file=sys.stderr)
            return 2
        regressed = point > args.threshold and lower > 0.0
        rows.append((bench_id, point, lower, upper, regressed))
    if not rows:
        print(f"criterion-gate: no change/estimates.json under {args.criterion_dir}: run the "
              "benches twice, or with --baseline NAME after --save-baseline NAME", file=sys.stderr)
        return 2

    width = max(len(r[0]) for r in rows)
    print(f"{'benchmark':<{width}}  {args.statistic + ' change':>12}  {'95% interval':>20}  verdict")
    for bench_id, point, lower, upper, regressed in rows:
        verdict = "REGRESSION" if regressed else "ok"
        interval = f"[{lower:+.1%}, {upper:+.1%}]"
        print(f"{bench_id:<{width}}  {point:>+12.1%}  {interval:>20}  {verdict}")
    failed = [r for r in rows if r[4]]
    print(f"criterion-gate: {len(failed)} of {len(rows)} benchmarks slower than "
          f"{args.threshold:.1%} ({args.statistic})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
