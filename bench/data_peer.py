#!/usr/bin/python3
"""The peer of `seedproof bench data`: the same files read as Python users read
them, with numpy and PIL (what torchvision's ImageFolder and MNIST datasets do),
one process, one core. Prints one JSON line per format, as the bench does.

  data_peer.py DIR [--repeats N]    (DIR: tests/data/write_formats.py's output)
"""
import argparse
import gzip
import json
import os
import time

import numpy as np
from PIL import Image

FASHION = "/usr/share/datasets/fashion-mnist"


def idx(path, opener=open):
    with opener(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def idx_pair(folder, stem, opener=open, suffix=""):
    return (idx(os.path.join(folder, stem + "-images-idx3-ubyte" + suffix), opener),
            idx(os.path.join(folder, stem + "-labels-idx1-ubyte" + suffix), opener))


def image_folder(root):
    """torchvision.datasets.ImageFolder's walk (sorted classes, sorted files), each
    image decoded by PIL into an array."""
    images, labels = [], []
    classes = sorted(e.name for e in os.scandir(root) if e.is_dir())
    for label, name in enumerate(classes):
        for dirpath, _, files in sorted(os.walk(os.path.join(root, name))):
            for file in sorted(files):
                with Image.open(os.path.join(dirpath, file)) as picture:
                    images.append(np.asarray(picture))
                labels.append(label)
    return np.stack(images), np.array(labels)


def formats(dir):
    """(label, read): read() reads every split, labels too, and returns how many
    images it read."""
    def pairs(splits):
        return sum(len(x) for x, _ in splits)

    yield "fashion-mnist idx.gz (Debian's, 70,000)", lambda: pairs(
        [idx_pair(FASHION, s, gzip.open, ".gz") for s in ("train", "t10k")])
    yield "idx", lambda: pairs([idx_pair(os.path.join(dir, "idx"), s) for s in ("train", "t10k")])
    for name in ("png", "jpeg"):
        yield name, lambda name=name: pairs([image_folder(os.path.join(dir, name, s))
                                             for s in ("train", "test")])
    yield "npy", lambda: pairs(
        [(np.load(os.path.join(dir, "npy", "x_" + s + ".npy")),
          np.load(os.path.join(dir, "npy", "y_" + s + ".npy"))) for s in ("train", "test")])

    def npz():
        with np.load(os.path.join(dir, "data.npz")) as archive:
            return pairs([(archive["x_" + s], archive["y_" + s]) for s in ("train", "test")])
    yield "npz (compressed)", npz
    yield "csv", lambda: sum(len(np.loadtxt(os.path.join(dir, "csv", s + ".csv"), delimiter=",",
                                            skiprows=1, dtype=np.float32))
                             for s in ("train", "test"))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("dir")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    for label, read in formats(args.dir):
        best = None
        for _ in range(args.repeats):
            start = time.perf_counter()
            images = read()
            seconds = time.perf_counter() - start
            best = seconds if best is None else min(best, seconds)
        print(json.dumps({"format": label, "images": images, "seconds": best,
                          "images_per_s": images / best}), flush=True)


if __name__ == "__main__":
    main()
