#!/usr/bin/env python3
"""The paper-form ablation table (issue 21) from run folders: teacher objective x feedback, mean and std over seeds,
and per objective each feedback effect (column - off) paired by seed, with a 95 % t confidence interval and a paired
bootstrap interval. Works on partial results: a run without summary.json is counted as missing. A run with a feedback
variant (summary.json's feedback_variant: --feedback-weight, --feedback-baseline, --feedback-normalise, --feedback-wait) is a column of
its own, e.g. "dot-product ×20" or "dot-product baseline 0.99", compared with off and with its rule's plain column.

usage: ablation_table.py RUNS_DIR [--metric student_after_finetune] [--markdown]
Run folders are found by their summary.json (mode mpl or uda, its teacher_objective, feedback and seed).
"""
import argparse
import json
import math
import os
import random
import statistics
import sys

# Two-sided 95 % quantiles of Student's t with n - 1 degrees of freedom (n = 2 ... 31); no SciPy needed.
T975 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
        2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042]
OBJECTIVES = ["supervised", "randaugment", "uda"]
FEEDBACKS = ["off", "dot-product", "loss-difference", "soft"]


def column_name(feedback, variant):
    """The feedback rule, with the variant's settings that differ from the paper's rule."""
    if not variant:
        return feedback
    parts = [feedback]
    if variant.get("weight", 1) != 1:
        parts.append(f"×{variant['weight']:g}")
    if variant.get("baseline_decay", 0) > 0:
        parts.append(f"baseline {variant['baseline_decay']:g}")
    if variant.get("normalise_decay", 0) > 0:
        parts.append(f"normalise {variant['normalise_decay']:g}")
    if variant.get("wait", 0) > 0:
        parts.append(f"wait {variant['wait']}")
    return " ".join(parts)


def load(runs_dir, metric):
    """{(objective, feedback): {seed: accuracy in %}} from every summary.json under runs_dir."""
    table = {}
    for root, _, files in os.walk(runs_dir):
        if "summary.json" not in files:
            continue
        try:
            s = json.load(open(os.path.join(root, "summary.json")))
        except (OSError, ValueError) as e:
            print(f"skipping {root}: {e}", file=sys.stderr)
            continue
        if s.get("mode") not in ("mpl", "uda") or "teacher_objective" not in s:
            continue
        value = s["test_accuracy"].get(metric)
        if value is None:
            continue
        key = (s["teacher_objective"], column_name(s["feedback"], s.get("feedback_variant")))
        if s["seed"] in table.setdefault(key, {}):
            print(f"warning: two runs of {key} seed {s['seed']}; keeping {root}", file=sys.stderr)
        table[key][s["seed"]] = 100 * value
    return table


def t_interval(diffs):
    n = len(diffs)
    mean = statistics.fmean(diffs)
    if n < 2:
        return mean, None
    half = T975[min(n - 2, len(T975) - 1)] * statistics.stdev(diffs) / math.sqrt(n)
    return mean, (mean - half, mean + half)


def bootstrap(diffs, reps=10000, rng=random.Random(0)):
    """Percentile interval of the mean over seeds resampled with replacement (pairs stay pairs). None below 5 pairs:
    with so few the resampled means take a handful of values and the interval is far too narrow."""
    if len(diffs) < 5:
        return None
    means = sorted(statistics.fmean(rng.choices(diffs, k=len(diffs))) for _ in range(reps))
    return means[int(0.025 * reps)], means[int(0.975 * reps) - 1]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs_dir")
    ap.add_argument("--metric", default="student_after_finetune",
                    help="a key of summary.json's test_accuracy (default student_after_finetune)")
    args = ap.parse_args()
    table = load(args.runs_dir, args.metric)
    if not table:
        print(f"no finished runs with a teacher_objective under {args.runs_dir}")
        return 1
    columns = [f for f in FEEDBACKS if any(k[1] == f for k in table)]
    columns += sorted({k[1] for k in table} - set(FEEDBACKS))  # the variants, after the plain rules
    objectives = [o for o in OBJECTIVES if any(k[0] == o for k in table)]

    def cell(key):
        values = list(table.get(key, {}).values())
        if not values:
            return "—"
        sd = f" ± {statistics.stdev(values):.2f}" if len(values) > 1 else ""
        return f"{statistics.fmean(values):.2f}{sd} (n={len(values)})"

    print(f"{args.metric}, % of the test set: mean ± std over seeds (n = seeds finished)\n")
    print("| teacher objective | " + " | ".join(f"feedback {c}" for c in columns) + " |")
    print("|---" * (len(columns) + 1) + "|")
    for o in objectives:
        print(f"| {o} | " + " | ".join(cell((o, c)) for c in columns) + " |")
    def effects(title, against):
        """Each column against the column against(c) names (None: no row), paired by seed."""
        rows = []
        for o in objectives:
            for c in columns:
                base_name = against(c)
                if base_name is None:
                    continue
                base, on = table.get((o, base_name), {}), table.get((o, c), {})
                seeds = sorted(set(base) & set(on))
                if not seeds:
                    continue
                diffs = [on[s] - base[s] for s in seeds]
                mean, ci = t_interval(diffs)
                boot = bootstrap(diffs)
                fmt = lambda i: "—" if i is None else f"[{i[0]:+.2f}, {i[1]:+.2f}]"
                per = ", ".join(f"{d:+.2f}" for d in diffs)
                rows.append(f"| {o} | {c} | {len(seeds)} | {','.join(map(str, seeds))} | {mean:+.2f} | {fmt(ci)} | "
                            f"{fmt(boot)} | {per} |")
        if not rows:
            return
        print(f"\n{title}, paired by seed: mean, 95 % t interval, 95 % paired bootstrap interval (from 5 pairs on)\n")
        print("| teacher objective | feedback | pairs | seeds | mean effect | 95 % t CI | 95 % bootstrap CI | per seed |")
        print("|---|---|---|---|---|---|---|---|")
        print("\n".join(rows))

    # A run folder without summary.json is still running, or stopped (e.g. exit 3 on a NaN): named, not counted.
    unfinished = sorted(root for root, _, files in os.walk(args.runs_dir)
                        if "options.json" in files and "summary.json" not in files)
    if unfinished:
        print("\nwithout summary.json (running, or stopped: see each run's stderr): " + ", ".join(
            os.path.relpath(u, args.runs_dir) for u in unfinished))
    effects("feedback effect (column − off)", lambda c: None if c == "off" else "off")
    # A variant against the plain rule it changes (its column name's first word).
    effects("variant effect (column − its plain rule)",
            lambda c: None if c in FEEDBACKS or c.split(" ")[0] not in columns else c.split(" ")[0])
    return 0


if __name__ == "__main__":
    sys.exit(main())
