#!/usr/bin/env python3
"""Small CIFAR-10 and SVHN data sets in their published formats, for Tests/runner/run_tests.sh.

    rgb_data.py make ROOT      writes ROOT/<case>/ for every case below and ROOT/expect/*.npy
    rgb_data.py check ROOT KIND DUMP
                               compares what mplc-run loaded (DUMP/, written by `test_rgb dump`) with the
                               images and labels ROOT/expect holds for KIND (cifar or svhn)

Only the standard library and numpy: the MAT-files are written here with struct and zlib, after MathWorks'
"MAT-File Format" (Level 5), independently of the C reader they test. Images are made in numpy as
[N, H, W, C] uint8; each format's layout is produced by numpy's own transposes (CIFAR-10: planar R, G, B
planes of a row-major image; SVHN: X[row, col, channel, image] in column-major order), so a wrong index in
the C reader shows up as a mismatch.
"""
import os
import shutil
import struct
import sys
import zlib

import numpy as np

SIDE = 32
CIFAR_MEAN, CIFAR_STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)
SVHN_MEAN, SVHN_STD = (0.4377, 0.4438, 0.4728), (0.1980, 0.2010, 0.1970)


def images(n, seed):
    """Class-dependent colour plus a class-dependent stripe and noise: a linear model can learn them."""
    palette = np.random.default_rng(0).integers(30, 226, size=(10, 3))  # the same classes in every split
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 10
    rng.shuffle(labels)
    x = np.empty((n, SIDE, SIDE, 3), dtype=np.int64)
    x[:] = palette[labels][:, None, None, :]
    for i, k in enumerate(labels):
        x[i, 3 * k:3 * k + 3, :, :] = 250  # a bright row band whose place says the class
    x += rng.integers(-25, 26, size=x.shape)
    x = np.clip(x, 0, 255).astype(np.uint8)
    x[0, 0, 0] = (0, 128, 255)  # fixed corner values, checked exactly
    x[0, 0, 31] = (7, 8, 9)
    x[0, 31, 0] = (200, 100, 50)
    return x, labels.astype(np.uint8)


# ---------------------------------------------------------------- CIFAR-10

def cifar_bytes(x, y):
    planar = x.transpose(0, 3, 1, 2)  # [N, C, H, W]: the R plane (row-major), then G, then B
    rec = np.concatenate([y[:, None], planar.reshape(len(y), -1)], axis=1).astype(np.uint8)
    return rec.tobytes()


def write_cifar(d, train, test, per_batch):
    os.makedirs(d, exist_ok=True)
    (xt, yt), (xs, ys) = train, test
    for b in range(5):
        s = slice(b * per_batch, (b + 1) * per_batch)
        with open(os.path.join(d, "data_batch_%d.bin" % (b + 1)), "wb") as f:
            f.write(cifar_bytes(xt[s], yt[s]))
    with open(os.path.join(d, "test_batch.bin"), "wb") as f:
        f.write(cifar_bytes(xs, ys))


# ---------------------------------------------------------------- MAT-file Level 5

MI = {np.dtype(np.int8): 1, np.dtype(np.uint8): 2, np.dtype(np.int16): 3, np.dtype(np.uint16): 4,
      np.dtype(np.int32): 5, np.dtype(np.uint32): 6, np.dtype(np.float32): 7, np.dtype(np.float64): 9}
MX_CELL, MX_CHAR, MX_DOUBLE, MX_UINT8 = 1, 4, 6, 9
MI_INT8, MI_UINT16, MI_INT32, MI_UINT32, MI_MATRIX, MI_COMPRESSED = 1, 4, 5, 6, 14, 15


def element(mi, data, small_ok=True):
    if small_ok and len(data) <= 4:  # small data element: byte count and type in one word, data in the next
        return struct.pack("<HH", mi, len(data)) + data.ljust(4, b"\0")
    return struct.pack("<II", mi, len(data)) + data + b"\0" * (-len(data) % 8)


def matrix(name, cls, shape, payload=b"", small_names=True, flags=0):
    body = element(MI_UINT32, struct.pack("<II", cls | flags, 0))
    body += element(MI_INT32, struct.pack("<%di" % len(shape), *shape))
    body += element(MI_INT8, name.encode(), small_names)
    body += payload
    return struct.pack("<II", MI_MATRIX, len(body)) + body


def numeric(name, arr, cls, storage, small_names=True):
    """A real numeric array of class `cls`, its data stored as `storage` (MATLAB stores a double array whose
    values fit in a smaller integer type that way), column-major."""
    data = np.asarray(arr).astype(storage).tobytes(order="F")
    return matrix(name, cls, arr.shape, element(MI[np.dtype(storage)], data, False), small_names)


def compressed(el):
    z = zlib.compress(el)
    return struct.pack("<II", MI_COMPRESSED, len(z)) + z


def mat_header(version=0x0100, endian=b"IM", text=b"MATLAB 5.0 MAT-file, Platform: GLNXA64, Created by: rgb_data.py"):
    return text.ljust(116, b" ") + b"\0" * 8 + struct.pack("<H", version) + endian


def svhn_vars(x, y, y_storage=np.float64):
    X = x.transpose(1, 2, 3, 0)  # [row, col, channel, image]
    Y = np.where(y == 0, 10, y).astype(np.float64).reshape(-1, 1)  # the digit 0 has label 10
    return numeric("X", X, MX_UINT8, np.uint8), numeric("y", Y, MX_DOUBLE, y_storage)


def write_mat(path, elements, header=None):
    with open(path, "wb") as f:
        f.write(header or mat_header())
        for el in elements:
            f.write(el)


# ---------------------------------------------------------------- the cases

def make(root):
    if os.path.exists(root):
        shutil.rmtree(root)
    os.makedirs(os.path.join(root, "expect"))

    def ex(name, a):
        np.save(os.path.join(root, "expect", name + ".npy"), a)


    # CIFAR-10: 5 x 60 training records, 100 test records
    ctrain, ctest = images(300, 1), images(100, 2)
    c = os.path.join(root, "cifar")
    write_cifar(c, ctrain, ctest, 60)
    for name, a in [("train_x", ctrain[0]), ("train_y", ctrain[1]), ("test_x", ctest[0]), ("test_y", ctest[1])]:
        ex("cifar_" + name, a)
    shutil.copytree(c, os.path.join(root, "cifar-nested", "cifar-10-batches-bin"))  # as the archive unpacks

    def bad(name):
        shutil.copytree(c, os.path.join(root, name))
        return os.path.join(root, name)

    d = bad("cifar-truncated")
    with open(os.path.join(d, "test_batch.bin"), "r+b") as f:
        f.truncate(100 * 3073 - 100)
    d = bad("cifar-badlabel")
    with open(os.path.join(d, "data_batch_2.bin"), "r+b") as f:
        f.seek(7 * 3073)
        f.write(bytes([10]))
    d = bad("cifar-missing")
    os.remove(os.path.join(d, "data_batch_3.bin"))
    os.remove(os.path.join(d, "data_batch_5.bin"))
    d = bad("cifar-empty")
    open(os.path.join(d, "data_batch_4.bin"), "wb").close()

    # SVHN: 400 training images (compressed variables, y stored as double, a char variable next to them),
    # 120 test images (uncompressed, y a double array stored as uint8, names in full-size elements)
    strain, stest = images(400, 3), images(120, 4)
    for name, a in [("train_x", strain[0]), ("train_y", strain[1]), ("test_x", stest[0]), ("test_y", stest[1])]:
        ex("svhn_" + name, a)
    s = os.path.join(root, "svhn")
    os.makedirs(s)
    note = matrix("note", MX_CHAR, (1, 3), element(MI_UINT16, "abc".encode("utf-16-le"), False))
    X, Y = svhn_vars(*strain)
    write_mat(os.path.join(s, "train_32x32.mat"), [compressed(note), compressed(X), compressed(Y)])
    Xt = numeric("X", stest[0].transpose(1, 2, 3, 0), MX_UINT8, np.uint8, small_names=False)
    Yt = numeric("y", np.where(stest[1] == 0, 10, stest[1]).reshape(-1, 1), MX_DOUBLE, np.uint8, small_names=False)
    write_mat(os.path.join(s, "test_32x32.mat"), [Xt, Yt])

    def svhn_bad(name, train_bytes):
        d = os.path.join(root, name)
        shutil.copytree(s, d)
        with open(os.path.join(d, "train_32x32.mat"), "wb") as f:
            f.write(train_bytes)

    good = open(os.path.join(s, "train_32x32.mat"), "rb").read()
    svhn_bad("svhn-truncated", good[:len(good) // 2])
    z = bytearray(good)
    at = 128 + len(compressed(note)) + 8 + 200  # inside the deflate stream of X
    z[at:at + 64] = bytes(b ^ 0x5A for b in z[at:at + 64])
    svhn_bad("svhn-corrupt", bytes(z))
    svhn_bad("svhn-v73", mat_header(version=0x0200, text=b"MATLAB 7.3 MAT-file, Platform: GLNXA64, HDF5 schema 1.00 .") + b"\0" * 512)
    svhn_bad("svhn-bigendian", mat_header(endian=b"MI") + compressed(X))
    svhn_bad("svhn-noy", mat_header() + compressed(X))
    y11 = np.where(strain[1] == 0, 10, strain[1]).astype(np.float64).reshape(-1, 1)
    y11[5] = 11
    svhn_bad("svhn-badlabel", mat_header() + X + numeric("y", y11, MX_DOUBLE, np.float64))
    X28 = numeric("X", strain[0][:, :28, :28, :].transpose(1, 2, 3, 0), MX_UINT8, np.uint8)
    svhn_bad("svhn-wrongshape", mat_header() + X28 + Y)
    cell = matrix("X", MX_CELL, (1, 1))
    svhn_bad("svhn-cell", mat_header() + cell + Y)
    svhn_bad("svhn-ycount", mat_header() + X + numeric("y", y11[:-1], MX_DOUBLE, np.float64))


# ---------------------------------------------------------------- checking what the runner loaded

def check(root, kind, dump):
    mean, std = (CIFAR_MEAN, CIFAR_STD) if kind == "cifar" else (SVHN_MEAN, SVHN_STD)
    mean, std = np.array(mean), np.array(std)
    failures = 0
    for split in ("train", "test"):
        want_u8 = np.load(os.path.join(root, "expect", "%s_%s_x.npy" % (kind, split)))
        want_y = np.load(os.path.join(root, "expect", "%s_%s_y.npy" % (kind, split)))
        got = np.load(os.path.join(dump, split + "_x.npy"))
        got_y = np.load(os.path.join(dump, split + "_y.npy"))
        # x = (p/255 - mean_c)/std_c in double, rounded once to float32: what the runner computes
        want = ((want_u8 / 255.0 - mean) / std).astype(np.float32)
        if got.shape != want.shape or not np.array_equal(got, want):
            bad = np.argwhere(got != want)[:3].tolist() if got.shape == want.shape else "shape %s" % (got.shape,)
            print("FAIL %s %s: pixels differ from the expected [N, H, W, C] values: %s" % (kind, split, bad))
            failures += 1
        if not np.array_equal(got_y, want_y.astype(got_y.dtype)):
            print("FAIL %s %s: labels differ (first: %s, expected %s)" % (kind, split, got_y[:10], want_y[:10]))
            failures += 1
    x = np.load(os.path.join(dump, "train_x.npy"))
    samples = []
    for (n, h, w, c), p in [((0, 0, 0, 0), 0), ((0, 0, 0, 2), 255), ((0, 0, 31, 1), 8), ((0, 31, 0, 0), 200)]:
        want = np.float32((p / 255.0 - mean[c]) / std[c])
        samples.append("x[%d,%d,%d,%d] = %.6f" % (n, h, w, c, x[n, h, w, c]))
        if x[n, h, w, c] != want:
            print("FAIL %s: x[%d,%d,%d,%d] = %r, expected %r (byte %d)" % (kind, n, h, w, c, x[n, h, w, c], want, p))
            failures += 1
    stats = np.load(os.path.join(dump, "stats.npy"))  # rows lo, hi, mean
    lo, hi = ((0 - mean) / std).astype(np.float32), ((1 - mean) / std).astype(np.float32)
    if not (np.array_equal(stats[0], lo) and np.array_equal(stats[1], hi)):
        print("FAIL %s: channel ranges %s, expected lo %s hi %s" % (kind, stats[:2], lo, hi))
        failures += 1
    train_mean = x.reshape(-1, 3).astype(np.float64).mean(axis=0)
    if not np.allclose(stats[2], train_mean, atol=1e-5):
        print("FAIL %s: channel means %s, expected %s" % (kind, stats[2], train_mean))
        failures += 1
    if failures == 0:
        print("%s: every pixel in [N, H, W, C] order with per-channel normalisation, labels%s; %s" %
              (kind, " (10 -> 0)" if kind == "svhn" else "", ", ".join(samples)))
    return 1 if failures else 0


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "make":
        make(sys.argv[2])
    elif len(sys.argv) == 5 and sys.argv[1] == "check":
        sys.exit(check(sys.argv[2], sys.argv[3], sys.argv[4]))
    else:
        sys.exit(__doc__)
