#!/usr/bin/python3
"""Seed corpora for the fuzz targets (tests/fuzz/*_fuzz.cc): real files of every
kind each reader takes, plus the project's bad-input corpora.

  seeds.py SEEDPROOF OUT    writes OUT/<target>/<file> for every target

sweep_spec: the shipped specs, the bad specs the spec tests refuse, and the tiny
study. idx, image, npy, csv: the first Fashion-MNIST images in each format
(tests/data/write_formats.py, numpy and PIL). model_file, results, onnx: a
one-seed tiny study run by SEEDPROOF: its models as stored, its results file and
its source model exported as ONNX, beside the bad ONNX files the importer tests
refuse and models of Debian's ONNX backend test suite. dataset_blob: the first
images encoded as data/dataset_blob.h describes, written here apart from
seedproof's encoder. The npy and csv targets take a leading selector byte (and
npy pairs a 2-byte split), so their seeds carry one."""
import gzip, os, pathlib, shutil, sqlite3, struct, subprocess, sys, tempfile

SEEDPROOF, OUT = sys.argv[1], pathlib.Path(sys.argv[2])
HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent.parent
ONNX_SUITE = pathlib.Path("/usr/share/libonnx-testdata/data/node")
FASHION = pathlib.Path("/usr/share/datasets/fashion-mnist")
work = pathlib.Path(tempfile.mkdtemp(prefix="seedproof-seeds-"))


def target(name):
    d = OUT / name
    d.mkdir(parents=True, exist_ok=True)
    return d


def copy(files, name):
    d = target(name)
    for f in files:
        shutil.copy(f, d / ("%s-%s" % (f.parent.name, f.name)))


copy(sorted((ROOT / "experiments" / "specs").glob("*.yaml")) +
     sorted((ROOT / "tests" / "experiments" / "specs" / "bad").glob("*.yaml")) +
     [ROOT / "tests" / "testdata" / "tiny-study.yaml"], "sweep_spec")

formats = work / "formats"
subprocess.run([sys.executable, str(ROOT / "tests" / "data" / "write_formats.py"), str(formats),
                "--train", "20", "--test", "20"], check=True, capture_output=True)
copy(sorted((formats / "idx").iterdir()), "idx")
copy(sorted(formats.glob("png/train/*/*.png"))[:4] + sorted(formats.glob("jpeg/train/*/*.jpg"))[:4] +
     sorted(formats.glob("rgb/train/*/*.png"))[:2] + [formats / "tiny.png"], "image")
npy = target("npy")
for layout, folder in ((0, "npy"), (2, "nchw")):
    x = (formats / folder / "x_train.npy").read_bytes()
    y = (formats / "npy" / "y_train.npy").read_bytes()
    (npy / ("pair-%s.bin" % folder)).write_bytes(bytes([layout, len(x) >> 8, len(x) & 255]) + x + y)
(npy / "archive.bin").write_bytes(bytes([1]) + (formats / "data.npz").read_bytes())
csv = target("csv")
for selector in (1 | 2, 1 | 2 | 8 | 16):  # header, label first; as (28, 28, 1) of 10 classes
    (csv / ("train-%d.bin" % selector)).write_bytes(
        bytes([selector]) + (formats / "csv" / "train.csv").read_bytes())

# A tiny study, one seed: its models, results file and source model as ONNX.
spec = (ROOT / "tests" / "testdata" / "tiny-study.yaml").read_text().replace("seeds: 4", "seeds: 1")
(work / "tiny.yaml").write_text(spec)
subprocess.run([SEEDPROOF, "run", str(work / "tiny.yaml"), "--out", str(work / "run"),
                "--workers", "1"], check=True, capture_output=True)
db = sqlite3.connect(str(work / "run" / "seedproof.db"))
models = target("model_file")
for (sha,) in db.execute("SELECT DISTINCT model_sha256 FROM trials WHERE model_sha256 IS NOT NULL"):
    shutil.copy(work / "run" / "seedproof.db.artifacts" / sha, models / (sha[:16] + ".model"))
shutil.copy(work / "run" / "results.jsonl", target("results") / "tiny-study.jsonl")
onnx = target("onnx")
subprocess.run([SEEDPROOF, "model", "export", str(work / "run"), "--arm", "source", "-o",
                str(onnx / "tiny-source.onnx")], check=True, capture_output=True)
subprocess.run([sys.executable, str(ROOT / "tests" / "onnx" / "bad_models.py"), str(work / "bad")],
               check=True, capture_output=True)
copy(sorted((work / "bad").glob("*.onnx")), "onnx")
for case in ("test_gemm_default_no_bias", "test_relu", "test_conv_with_strides_padding",
             "test_maxpool_2d_default", "test_flatten_axis1", "test_batchnorm_example"):
    if (ONNX_SUITE / case / "model.onnx").exists():
        shutil.copy(ONNX_SUITE / case / "model.onnx", onnx / (case + ".onnx"))


def idx_array(name, n):
    with gzip.open(FASHION / name, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = list(struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim]))
    size = 1
    for d in dims[1:]:
        size *= d
    return dims[1:], data[4 + 4 * ndim:4 + 4 * ndim + n * size]


def split(images, labels, n):
    dims, pixels = idx_array(images, n)
    _, label_bytes = idx_array(labels, n)
    out = struct.pack("<BI", 1, len(dims)) + struct.pack("<" + "q" * len(dims), *dims)
    return out + struct.pack("<q", n) + pixels + struct.pack("<" + "i" * n, *label_bytes)


blob = (b"SPDATA1\n" + struct.pack("<I", 10) +
        split("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", 3) +
        split("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz", 2))
(target("dataset_blob") / "fashion-5.blob").write_bytes(blob)
shutil.rmtree(work)
for d in sorted(OUT.iterdir()):
    print("%-13s %3d seeds" % (d.name, len(list(d.iterdir()))))
