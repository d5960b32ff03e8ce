#!/usr/bin/env python3
"""Files for the Reduced MPL tests of the runner (Tests/runner/reduced_tests.sh); needs numpy.

  reduced_data.py make DIR                 DIR/data: a small float32 data set, 600 training images (60 per class)
                                           and 550 test images, the first 550 training images again; DIR/cache.npy,
                                           a valid cache for it; DIR/bad/*.npy, broken caches
  reduced_data.py check CACHE N_TRAIN N_TEST K
                                           a cache written by `mplc-run cache` for DIR/data: float32 [N_TRAIN +
                                           N_TEST, K], rows are distributions, test row j = training row j
  reduced_data.py meta CHECKPOINT KEY      prints a metadata value of a safetensors checkpoint
  reduced_data.py replay DIR B_L B_U K H W C
                                           one replay step, DIR/step_000000, with teacher_x.npy

Every image has a 5x5 block at its centre whose value, (i + 1) / 2048, names training image i: a weak view
(a shift by at most 2 pixels) keeps the centre pixel, so test_reduced.c can tell which image a row of a
batch holds. The other pixels are random, so that a teacher's predictions differ from image to image.
"""
import json
import struct
import sys

import numpy as np

N_TRAIN, N_TEST, K = 600, 550, 10


def images(n, rng):
    x = rng.random((n, 28, 28, 1), dtype=np.float32)
    for i in range(n):
        x[i, 12:17, 12:17, 0] = (i + 1) / 2048.0
    return x


def distributions(labels, right, rng):
    """Rows with half their mass on the label where `right`, else on the next class, the rest random."""
    top = np.where(right, labels, (labels + 1) % K)
    rows = 0.5 * rng.dirichlet(np.ones(K), size=len(labels)) + 0.5 * np.eye(K)[top]
    return rows.astype(np.float32)


def make(out):
    import os

    rng = np.random.default_rng(7)
    os.makedirs(out + "/data", exist_ok=True)
    os.makedirs(out + "/bad", exist_ok=True)
    x = images(N_TRAIN, rng)
    y = (np.arange(N_TRAIN) % K).astype(np.int64)
    np.save(out + "/data/train_x.npy", x)
    np.save(out + "/data/train_y.npy", y)
    np.save(out + "/data/test_x.npy", x[:N_TEST])
    np.save(out + "/data/test_y.npy", y[:N_TEST])
    # Training rows are right for i % 4 != 0, test rows for j % 3 != 0 from j = 50 on: the test rows differ
    # from the training rows of the same images, and the last evaluation chunk (rows 500..) from the first
    # rows, so an evaluation that reads the wrong rows sees another accuracy.
    j = np.arange(N_TEST)
    train = distributions(y, np.arange(N_TRAIN) % 4 != 0, rng)
    test = distributions(y[:N_TEST], (j % 3 != 0) & (j >= 50), rng)
    cache = np.concatenate([train, test])
    np.save(out + "/cache.npy", cache)
    np.save(out + "/bad/short.npy", cache[:-1])
    np.save(out + "/bad/classes.npy", np.concatenate([cache, np.zeros((len(cache), 1), np.float32)], axis=1))
    broken = {"nan": (N_TRAIN + 7, 3, np.nan), "negative": (5, 2, -0.25), "inf": (599, 0, np.inf)}
    for name, (row, col, v) in broken.items():
        c = cache.copy()
        c[row, col] = v
        np.save(out + f"/bad/{name}.npy", c)
    c = cache.copy()
    c[42] *= 1.01
    np.save(out + "/bad/sum.npy", c)
    np.save(out + "/bad/f64.npy", cache.astype(np.float64))
    print(f"wrote {out}: {N_TRAIN} training and {N_TEST} test images, cache {cache.shape}")


def check(path, n_train, n_test, k):
    c = np.load(path)
    assert c.dtype == np.float32, f"{path}: dtype {c.dtype}"
    assert c.shape == (n_train + n_test, k), f"{path}: shape {c.shape}"
    assert np.isfinite(c).all() and (c >= 0).all(), f"{path}: a value is negative or not finite"
    worst_sum = float(np.abs(c.sum(axis=1, dtype=np.float64) - 1).max())
    assert worst_sum < 1e-5, f"{path}: a row sums to 1 +- {worst_sum}"
    # Test image j is training image j (make): its row must come back at n_train + j, training rows first.
    order = float(np.abs(c[n_train:] - c[:n_test]).max())
    spread = float(np.abs(c[1:n_train] - c[: n_train - 1]).max())
    assert order < 1e-6, f"{path}: test row j differs from training row j by {order}"
    assert spread > 1e-3, f"{path}: rows barely differ ({spread}), the order check means nothing"
    print(f"cache {c.shape} float32: rows sum to 1 within {worst_sum:.1e}; test row j = training row j "
          f"(max diff {order:.1e}, rows of neighbouring images differ by up to {spread:.2f})")


def meta(path, key):
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
    print(header.get("__metadata__", {}).get(key, ""))


def replay(out, bl, bu, k, h, w, ch):
    import os

    rng = np.random.default_rng(3)
    step = out + "/step_000000"
    os.makedirs(step, exist_ok=True)
    np.save(step + "/x.npy", rng.standard_normal((bl + 2 * bu, h, w, ch)).astype(np.float32))
    np.save(step + "/y.npy", (np.arange(bl) % k).astype(np.int32))
    np.save(step + "/scalars.npy", np.array([0.05, 0.05, 0.0, 1.0], np.float32))
    np.save(step + "/teacher_x.npy", rng.dirichlet(np.ones(k), size=bl + bu).astype(np.float32))


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "make":
        make(args[0])
    elif cmd == "check":
        check(args[0], *map(int, args[1:4]))
    elif cmd == "meta":
        meta(args[0], args[1])
    elif cmd == "replay":
        replay(args[0], *map(int, args[1:7]))
    else:
        sys.exit(__doc__)
