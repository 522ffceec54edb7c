#!/usr/bin/python3
"""The layering of docs/ARCHITECTURE.md, checked on every #include of the tree.

Usage: layering_test.py [REPO]            check the repository (default: this one)
       layering_test.py --selftest        the checker finds planted violations

Each folder may include project headers only from the folders below it, and
some libraries only where the architecture puts them:

  cli/           everything (CLI11 here only)
  bench/         coordinator/ and below
  coordinator/   worker/ and below (the only user of SQLite)
  worker/        experiments/ and below, proto/ (the only user of MPI); no YAML,
                 no sweep parser: the lease carries the trial
  experiments/   data/, onnx_io/, backends/; no gRPC, MPI, SQLite, Prometheus
  data/          backends/; no gRPC, MPI, SQLite, Prometheus, YAML, ONNX
  onnx_io/       backends/ (the only user of libonnx and its protobuf types)
  backends/      nothing above it; no gRPC, MPI, YAML, SQLite, Prometheus,
                 protobuf, ONNX
  proto/         generated code only

Prints every violation as file:line: what and why, and exits 1 if there is one.
"""
import pathlib
import re
import sys
import tempfile

# Folder -> the project folders it may include from (itself always).
MAY_USE = {
    "cli": {"bench", "coordinator", "worker", "experiments", "data", "onnx_io", "backends", "proto",
            "tests"},
    "bench": {"coordinator", "worker", "experiments", "data", "onnx_io", "backends", "proto"},
    "coordinator": {"worker", "experiments", "data", "onnx_io", "backends", "proto"},
    "worker": {"experiments", "data", "onnx_io", "backends", "proto"},
    "experiments": {"data", "onnx_io", "backends"},
    "data": {"backends"},
    "onnx_io": {"backends"},
    "backends": set(),
    "proto": set(),
}
LIBRARIES = {  # pattern of an include -> (what it is, the folders that may use it)
    r"^grpc|^grpcpp/|\.grpc\.pb\.h$": ("gRPC", {"cli", "bench", "coordinator", "worker", "tests"}),
    r"^mpi\.h$": ("MPI", {"worker", "bench", "tests"}),
    r"^sqlite3\.h$": ("SQLite", {"coordinator", "tests"}),
    r"^prometheus/": ("Prometheus", {"coordinator", "worker", "tests"}),
    r"^yaml-cpp/": ("YAML", {"experiments", "cli", "bench", "tests"}),
    r"^CLI/": ("CLI11", {"cli"}),
    r"^onnx/": ("ONNX", {"onnx_io", "tests"}),
    r"^google/protobuf/|\.pb\.h$": ("protobuf", {"proto", "onnx_io", "cli", "bench", "coordinator",
                                                 "worker", "tests"}),
}
# Headers a folder may not include although their folder is below it.
FORBIDDEN_HEADERS = {
    "worker": {header: "the sweep parser (the lease carries the trial)"
               for header in ("experiments/sweep_parse.h", "experiments/spec_parser.h",
                              "experiments/spec_yaml.h")},
}
INCLUDE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]')


def violations(repo):
    found = []
    for path in sorted(repo.rglob("*")):
        if path.suffix not in (".h", ".hpp", ".cc", ".cpp") or not path.is_file():
            continue
        relative = path.relative_to(repo)
        if relative.parts[0] in ("build", ".git") or relative.parts[0].startswith("build"):
            continue
        folder = relative.parts[0]
        if folder not in MAY_USE and folder != "tests":
            continue
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            m = INCLUDE.match(line)
            if not m:
                continue
            header = m.group(2)
            where = "%s:%d" % (relative, number)
            top = header.split("/")[0]
            if (m.group(1) == '"' and top in MAY_USE and top != folder and folder != "tests"
                    and not header.endswith(".pb.h")):
                if top not in MAY_USE[folder]:
                    found.append("%s: %s includes %s: %s/ is not below %s/" %
                                 (where, folder, header, top, folder))
            for pattern, (what, users) in LIBRARIES.items():
                if re.search(pattern, header) and folder not in users:
                    found.append("%s: %s includes %s: only %s may use %s" %
                                 (where, folder, header, ", ".join(sorted(users - {"tests"})),
                                  what))
            why = FORBIDDEN_HEADERS.get(folder, {}).get(header)
            if why:
                found.append("%s: %s includes %s: %s" % (where, folder, header, why))
    return found


def selftest():
    """The checker must fail on a tree that breaks each kind of rule."""
    planted = {
        "backends/a.cc": '#include "coordinator/store.h"\n',          # a layer above
        "backends/b.h": "#include <google/protobuf/message.h>\n",     # protobuf in backends
        "experiments/c.cc": "#include <sqlite3.h>\n",                 # SQLite outside coordinator
        "worker/d.cc": '#include "experiments/sweep_parse.h"\n',      # YAML path on the worker
        "data/e.cc": "  #  include <yaml-cpp/yaml.h>\n",              # spacing does not hide it
        "data/f.h": '#include "experiments/sweep.h"\n',               # data/ is below experiments/
        "experiments/g.cc": "#include <onnx/checker.h>\n",            # libonnx outside onnx_io/
        "backends/h.cc": '#include "onnx_io/onnx_model.h"\n',        # onnx_io/ is above backends/
        "coordinator/ok.cc": '#include "worker/worker.h"\n#include "experiments/trial.h"\n',
    }
    with tempfile.TemporaryDirectory() as folder:
        root = pathlib.Path(folder)
        for name, text in planted.items():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            (root / name).write_text(text)
        found = violations(root)
    expected = ["backends/a.cc:1", "backends/b.h:1", "experiments/c.cc:1", "worker/d.cc:1",
                "data/e.cc:1", "data/f.h:1", "experiments/g.cc:1", "backends/h.cc:1"]
    missed = [e for e in expected if not any(f.startswith(e + ":") for f in found)]
    wrong = [f for f in found if f.startswith("coordinator/ok.cc")]
    for f in found:
        print("found (planted):", f)
    if missed or wrong:
        print("selftest FAILED: missed %s, wrongly flagged %s" % (missed, wrong))
        return 1
    print("selftest: all %d planted violations found, the allowed includes passed" % len(expected))
    return 0


def main():
    if sys.argv[1:] == ["--selftest"]:
        return selftest()
    repo = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else
                        pathlib.Path(__file__).resolve().parents[1])
    found = violations(repo)
    for f in found:
        print(f)
    files = sum(1 for p in repo.rglob("*") if p.suffix in (".h", ".cc") and "build" not in p.parts)
    print("layering: %d violation(s) in %s (%d source files)" % (len(found), repo, files))
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
