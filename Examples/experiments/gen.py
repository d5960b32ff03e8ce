#!/usr/bin/env python3
"""Writes the issue-21 experiment model files: each is Examples/fashion_cnn.swiftdsl with one or more
text substitutions (kept here so that every variant's difference from the default is explicit)."""
import re, sys, pathlib
here = pathlib.Path(__file__).parent
base = (here / "../fashion_cnn.swiftdsl").read_text()
# The experiments were written from the example's 1,500-step recipe (the default before 2026-12-06): its steps line
# and the comment above it become `steps(1500)`; each run's command gives its --steps, or its file sets them.
base, n = re.subn(r"\n(?:    //[^\n]*\n)*    steps\([0-9_]+\)\n", "\n    steps(1500)\n", base, count=1)
assert n == 1

def variant(name, *subs, comment=""):
    """subs: (old, new) replaces every occurrence; (old, new, 1) only the first, the teacher's (it comes first)."""
    text = base
    for old, new, *count in subs:
        assert text.count(old) >= 1, (name, old)
        text = text.replace(old, new, *count)
    head = f"// issue 21 experiment {name}: fashion_cnn with {comment or ', '.join(f'{s[0]!r} -> {s[1]!r}' for s in subs)}\n"
    (here / f"{name}.swiftdsl").write_text(head + text)

UDA = "uda(temperature: 0.7, threshold: 0.6, weight: 1, rampSteps: 500)"
def uda(t=0.7, th=0.6, w=1, r=500):
    return (UDA, f"uda(temperature: {t}, threshold: {th}, weight: {w}, rampSteps: {r})")
LR = ("teacherOptimizer(SGD(learningRate: 0.05, warmupSteps: 100))\n    studentOptimizer(SGD(learningRate: 0.05, warmupSteps: 100))")
def lr(t, s):
    return (LR, f"teacherOptimizer(SGD(learningRate: {t}, warmupSteps: 100))\n    studentOptimizer(SGD(learningRate: {s}, warmupSteps: 100))")

variant("x_base", comment="no change (the baseline under its own name)")
variant("x_udaw4", uda(w=4))
variant("x_udaw8", uda(w=8))
variant("x_th08", uda(th=0.8))
variant("x_th095", uda(th=0.95))
variant("x_temp04", uda(t=0.4))
variant("x_lr01", lr(0.1, 0.1))
variant("x_ratio7", ("unlabeledRatio(4)", "unlabeledRatio(7)"))
variant("x_lb64", ("labeledBatch(32)", "labeledBatch(64)"))
variant("x_drop05", ("Dropout(0.2)", "Dropout(0.5)"))
variant("x_ls0", ("labelSmoothing(0.1)", "labelSmoothing(0)"))
variant("x_wide", ("Conv2D(16,", "Conv2D(32,"), ("Conv2D(32, kernel: 3, padding: 1)\n    ReLU()\n    MaxPool2D(2)\n    Flatten()",
        "Conv2D(64, kernel: 3, padding: 1)\n    ReLU()\n    MaxPool2D(2)\n    Flatten()"), comment="32 and 64 filters in both networks")
variant("x_wide_teacher", ("    Conv2D(16,", "    Conv2D(32,", 1), ("Conv2D(32, kernel: 3, padding: 1)\n    ReLU()\n    MaxPool2D(2)\n    Flatten()\n    Dense(128)",
        "Conv2D(64, kernel: 3, padding: 1)\n    ReLU()\n    MaxPool2D(2)\n    Flatten()\n    Dense(256)", 1),
        comment="a wider teacher (32 and 64 filters, Dense(256)); the student unchanged")
variant("x_weak_view", ("    pseudoLabels(.hard(.argmax))\n", "    pseudoLabels(.hard(.argmax))\n    pseudoLabelsFrom(.weakView)\n"),
        comment="pseudo labels from the teacher's weak view (pseudoLabelsFrom(.weakView))")
variant("x_wide_teacher_weak_view", ("    Conv2D(16,", "    Conv2D(32,", 1),
        ("Conv2D(32, kernel: 3, padding: 1)\n    ReLU()\n    MaxPool2D(2)\n    Flatten()\n    Dense(128)",
         "Conv2D(64, kernel: 3, padding: 1)\n    ReLU()\n    MaxPool2D(2)\n    Flatten()\n    Dense(256)", 1),
        ("    pseudoLabels(.hard(.argmax))\n", "    pseudoLabels(.hard(.argmax))\n    pseudoLabelsFrom(.weakView)\n"),
        comment="the wider teacher of x_wide_teacher and the pseudo labels of x_weak_view")
variant("x_wd1e3", lr(0.05, 0.05), ("warmupSteps: 100))\n    studentOptimizer", "warmupSteps: 100, weightDecay: 1e-3))\n    studentOptimizer"),
        ("studentOptimizer(SGD(learningRate: 0.05, warmupSteps: 100))", "studentOptimizer(SGD(learningRate: 0.05, warmupSteps: 100, weightDecay: 1e-3))"),
        comment="weight decay 1e-3 (default 5e-4) for both optimizers")
variant("x_slr01", ("studentOptimizer(SGD(learningRate: 0.05,", "studentOptimizer(SGD(learningRate: 0.1,"), comment="student learning rate 0.1")
variant("x_dense256", ("Dense(128)", "Dense(256)"), comment="Dense(256) instead of Dense(128) in both networks")
variant("x_w24", ("Conv2D(16,", "Conv2D(24,"), ("Conv2D(32, kernel: 3, padding: 1)\n    ReLU()\n    MaxPool2D(2)\n    Flatten()",
        "Conv2D(48, kernel: 3, padding: 1)\n    ReLU()\n    MaxPool2D(2)\n    Flatten()"), comment="24 and 48 filters in both networks")
variant("x_steps15k", ("steps(1500)", "steps(15_000)"), comment="15,000 steps (about 15 idle minutes at 2 threads: README's 20,000 in 17-18)")
variant("x_d256_15k", ("Dense(128)", "Dense(256)"), ("steps(1500)", "steps(15_000)"), comment="Dense(256) in both networks and 15,000 steps")
variant("x_ratio2", ("unlabeledRatio(4)", "unlabeledRatio(2)"))
variant("x_ratio2_25k", ("unlabeledRatio(4)", "unlabeledRatio(2)"), ("steps(1500)", "steps(25_000)"),
        comment="unlabeled ratio 2 (a step costs about 0.57 of the default's) and 25,000 steps")
variant("x_paper", ("unlabeledRatio(4)", "unlabeledRatio(7)"), uda(w=8), ("labelSmoothing(0.1)", "labelSmoothing(0.15)"),
        comment="the paper's unlabeled ratio 7, UDA weight 8 and label smoothing 0.15 (its temperature 0.7, threshold 0.6 and "
        "learning rate 0.05 are the default's; MPL.md)")
