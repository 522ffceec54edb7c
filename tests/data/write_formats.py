#!/usr/bin/python3
"""Writes the first images of the real Fashion-MNIST in every format a seedproof
spec can name, with numpy and PIL (independent of seedproof's readers):

  OUT/idx/      train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-... (raw)
  OUT/png/      train/<label>/<index>.png, test/<label>/<index>.png (gray)
  OUT/npy/      x_train.npy (uint8, N x 28 x 28), y_train.npy (int64), x_test, y_test
  OUT/nchw/     the same arrays as PyTorch keeps them: (N, 1, 28, 28)
  OUT/data.npz  the four arrays, np.savez_compressed
  OUT/csv/      train.csv, test.csv: a header, label first, then 784 pixel columns
  OUT/jpeg/     train/<label>/<index>.jpg (quality 90), test/...; and
  OUT/jpeg-decoded/  x_train.npy, x_test.npy: what PIL decodes those JPEGs to
  OUT/rgb/      train/, test/ trees of RGB PNGs (gray repeated), to convert back
  OUT/tiny.png  test image 17 at 14 x 14
  OUT/color/    a class tree of 40 random RGB PNGs (seeded), and OUT/color-gray.npy:
                what PIL's convert("L") makes of them, in file order

File names are zero-padded indices, so every reader keeps the IDX order.

  write_formats.py OUT [--train N] [--test M]
"""
import argparse
import gzip
import os
import struct

import numpy as np
from PIL import Image

FASHION = "/usr/share/datasets/fashion-mnist"


def read_idx(name):
    with gzip.open(os.path.join(FASHION, name), "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def write_idx(path, array):
    with open(path, "wb") as f:
        f.write(bytes([0, 0, 8, array.ndim]))
        f.write(struct.pack(">" + "I" * array.ndim, *array.shape))
        f.write(array.astype(np.uint8).tobytes())


def write_tree(root, images, labels, ext, mode, **save):
    for i, (image, label) in enumerate(zip(images, labels)):
        folder = os.path.join(root, str(label))
        os.makedirs(folder, exist_ok=True)
        picture = Image.fromarray(image, mode="L")
        if mode != "L":
            picture = picture.convert(mode)
        picture.save(os.path.join(folder, "%06d.%s" % (i, ext)), **save)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--train", type=int, default=2000)
    parser.add_argument("--test", type=int, default=500)
    args = parser.parse_args()
    splits = {
        "train": (read_idx("train-images-idx3-ubyte.gz")[:args.train],
                  read_idx("train-labels-idx1-ubyte.gz")[:args.train]),
        "test": (read_idx("t10k-images-idx3-ubyte.gz")[:args.test],
                 read_idx("t10k-labels-idx1-ubyte.gz")[:args.test]),
    }
    out = args.out
    for sub in ["idx", "npy", "nchw", "csv", "jpeg-decoded"]:
        os.makedirs(os.path.join(out, sub), exist_ok=True)
    arrays = {}
    for split, (x, y) in splits.items():
        stem = "train" if split == "train" else "t10k"
        write_idx(os.path.join(out, "idx", stem + "-images-idx3-ubyte"), x)
        write_idx(os.path.join(out, "idx", stem + "-labels-idx1-ubyte"), y)
        np.save(os.path.join(out, "npy", "x_%s.npy" % split), x)
        np.save(os.path.join(out, "npy", "y_%s.npy" % split), y.astype(np.int64))
        np.save(os.path.join(out, "nchw", "x_%s.npy" % split), x[:, np.newaxis, :, :])
        np.save(os.path.join(out, "nchw", "y_%s.npy" % split), y.astype(np.int64))
        arrays["x_" + split] = x
        arrays["y_" + split] = y.astype(np.int64)
        header = "label," + ",".join("pixel%d" % i for i in range(784))
        table = np.concatenate([y.reshape(-1, 1), x.reshape(len(x), -1)], axis=1)
        np.savetxt(os.path.join(out, "csv", split + ".csv"), table, fmt="%d", delimiter=",",
                   header=header, comments="")
        write_tree(os.path.join(out, "png", split), x, y, "png", "L")
        write_tree(os.path.join(out, "rgb", split), x, y, "png", "RGB")
        write_tree(os.path.join(out, "jpeg", split), x, y, "jpg", "L", quality=90)
        decoded = [np.asarray(Image.open(os.path.join(out, "jpeg", split, str(label),
                                                      "%06d.jpg" % i)))
                   for i, label in enumerate(y)]
        np.save(os.path.join(out, "jpeg-decoded", "x_%s.npy" % split), np.stack(decoded))
    np.savez_compressed(os.path.join(out, "data.npz"), **arrays)
    # Colour, and PIL's gray of it: the conversion seedproof must match.
    rng = np.random.default_rng(15)
    grays = []
    for i in range(40):
        folder = os.path.join(out, "color", "train", str(i % 2))
        os.makedirs(folder, exist_ok=True)
        picture = Image.fromarray(rng.integers(0, 256, (9, 7, 3), dtype=np.uint8), mode="RGB")
        picture.save(os.path.join(folder, "%06d.png" % i))
        grays.append(np.asarray(picture.convert("L")))
    np.save(os.path.join(out, "color-gray.npy"), np.stack(grays))
    # One image of another size, for a folder of mixed sizes.
    Image.fromarray(splits["test"][0][17], mode="L").resize((14, 14)).save(
        os.path.join(out, "tiny.png"))


if __name__ == "__main__":
    main()
