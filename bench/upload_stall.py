#!/usr/bin/python3
"""How much concurrent uploads slow the coordinator's other calls (issue 19, finding 5).

Usage: bench/upload_stall.py [BUILD_DIR (build)] [UPLOADS (4)] [MIB_EACH (400)]

A `seedproof coordinator` on 127.0.0.1 with a tiny study; a client (Python grpcio,
stubs generated from proto/seedproof.proto) leases one trial and streams UPLOADS
artifacts of MIB_EACH MiB at once on that attempt, in 1 MiB chunks, while the main
thread calls Studies.Get in a loop. Prints one JSON line: Get's latency idle and
during the uploads (p50, p99, max), the uploads' wall time and MiB/s, and the
coordinator's peak resident memory. The issue's figures, on main before
artifacts became files: 4 x 400 MiB made a Get wait 6.8 s and took 1.9 GB."""
import hashlib, json, pathlib, subprocess, sys, tempfile, threading, time

import grpc

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "testing"))
from coordinator_client import start_coordinator, stubs  # noqa: E402

build = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "build")
uploads = int(sys.argv[2]) if len(sys.argv) > 2 else 4
mib = int(sys.argv[3]) if len(sys.argv) > 3 else 400
work = pathlib.Path(tempfile.mkdtemp(prefix="seedproof-upload-stall-"))
pb, pb_grpc = stubs(work)

TOKEN = "upload-stall-bench-token-0123456789"
AUTH = [("authorization", "Bearer " + TOKEN)]
CHUNK = 1 << 20


def chunk_of(upload, i, base=bytes(range(256)) * (CHUNK // 256)):
    """The i-th MiB of an upload: distinct across uploads and chunks."""
    return ("%08d:%08d:" % (upload, i)).encode() + base[18:]


def percentile(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def summary(seconds):
    return {"p50_ms": round(1e3 * percentile(seconds, 0.5), 2),
            "p99_ms": round(1e3 * percentile(seconds, 0.99), 2),
            "max_ms": round(1e3 * max(seconds), 2), "calls": len(seconds)}


coordinator, address = start_coordinator(
    build / "cli" / "seedproof", work, TOKEN,
    ["--lease-ms", "600000", "--max-upload-bytes", str((mib + 1) << 20)])
try:
    channel = grpc.insecure_channel(address)
    studies, trials = pb_grpc.StudiesStub(channel), pb_grpc.TrialsStub(channel)
    spec = (ROOT / "tests" / "testdata" / "tiny-study.yaml").read_text()
    sweep = studies.Submit(pb.SubmitRequest(spec_text=spec, spec_path="tiny.yaml"),
                           metadata=AUTH, timeout=60).sweep_id
    trials.Register(pb.RegisterRequest(worker_id="bench", threads=1), metadata=AUTH, timeout=30)
    lease = trials.Lease(pb.LeaseRequest(worker_id="bench", wait_ms=5000), metadata=AUTH,
                         timeout=30)
    assert lease.leased, "nothing to lease"

    def get():
        start = time.perf_counter()
        studies.Get(pb.SweepRef(sweep_id=sweep), metadata=AUTH, timeout=60)
        return time.perf_counter() - start

    idle = [get() for _ in range(300)]

    # The hashes first: the first chunk carries the upload's SHA-256.
    hashes = []
    for u in range(uploads):
        h = hashlib.sha256()
        for i in range(mib):
            h.update(chunk_of(u, i))
        hashes.append(h.hexdigest())
    codes = [None] * uploads

    def upload(u):
        def chunks():
            for i in range(mib):
                chunk = pb.ArtifactChunk(data=chunk_of(u, i))
                if i == 0:
                    chunk.sha256, chunk.attempt_id = hashes[u], lease.attempt_id
                yield chunk
        try:
            trials.UploadArtifact(chunks(), metadata=AUTH, timeout=600)
            codes[u] = "OK"
        except grpc.RpcError as e:
            codes[u] = "%s: %s" % (e.code(), e.details())

    threads = [threading.Thread(target=upload, args=(u,)) for u in range(uploads)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    during = []
    while any(t.is_alive() for t in threads):
        during.append(get())
    wall = time.perf_counter() - start
    for t in threads:
        t.join()
    assert all(c == "OK" for c in codes), codes
    peak_kib = next(int(line.split()[1]) for line in
                    open("/proc/%d/status" % coordinator.pid) if line.startswith("VmHWM:"))
    print(json.dumps({"uploads": uploads, "mib_each": mib, "get_idle": summary(idle),
                      "get_during_uploads": summary(during),
                      "upload_wall_s": round(wall, 2),
                      "upload_mib_per_s": round(uploads * mib / wall, 1),
                      "coordinator_peak_rss_mib": round(peak_kib / 1024, 1)}))
finally:
    coordinator.kill()
    coordinator.wait()
    subprocess.run(["rm", "-rf", str(work)])
