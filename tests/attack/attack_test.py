#!/usr/bin/python3
"""An independent client attacks a live coordinator (issue 19, part 2).

Usage: attack_test.py PATH/TO/seedproof

Written against proto/seedproof.proto with Python's grpcio (stubs generated here
by grpc_tools.protoc), not with the project's C++ client. Two coordinators on
loopback serve the same small study to one real worker each. The first runs
undisturbed. The second is attacked while its worker trains: every finding of
issue 19's part 1, wrong and missing tokens on every RPC, malformed fields,
calls out of order, abandoned streams, and 16 client threads at once. Each
attack must get the right status. At the end the attacked coordinator must still
be up and its results must equal the undisturbed run's, line by line (timings
aside), with no attempt failed or expired."""
import concurrent.futures, json, os, pathlib, random, signal, sqlite3, subprocess, sys
import tempfile, threading, time

import grpc

SEEDPROOF = sys.argv[1]
ROOT = pathlib.Path(__file__).resolve().parent.parent.parent
sys.path.insert(0, str(ROOT / "tests" / "testing"))
from coordinator_client import start_coordinator, stubs, wait_for  # noqa: E402

work = pathlib.Path(tempfile.mkdtemp(prefix="seedproof-attack-"))
pb, pb_grpc = stubs(work)

TOKEN = "attack-test-token-0123456789abcdef"
# 13 trials: a pretrain, then 4 scratch and 8 transfer trials.
SPEC = (ROOT / "tests" / "testdata" / "tiny-study.yaml").read_text().replace(
    "pretrain: {lr: 0.01, epochs: 1}", "pretrain: {lr: 0.01, epochs: 3}")
TRIALS = 13
MAX_SPEC, MAX_MESSAGE = 1 << 20, 8 << 20
failures = []
lock = threading.Lock()


def check(ok, what):
    with lock:
        if not ok:
            failures.append(what)
            print("FAILED  " + what, flush=True)


class Coordinator:
    """`seedproof coordinator` on 127.0.0.1 with its own database, a submitted
    sweep and one real worker."""

    def __init__(self, name):
        self.dir = work / name
        self.dir.mkdir()
        self.process, self.address = start_coordinator(SEEDPROOF, self.dir, TOKEN)
        options = [("grpc.max_send_message_length", 64 << 20),
                   ("grpc.max_receive_message_length", 64 << 20)]
        self.channel = grpc.insecure_channel(self.address, options=options)
        self.studies = pb_grpc.StudiesStub(self.channel)
        self.trials = pb_grpc.TrialsStub(self.channel)
        reply = self.studies.Submit(pb.SubmitRequest(spec_text=SPEC, spec_path="tiny.yaml"),
                                    metadata=AUTH, timeout=60)
        self.sweep = reply.sweep_id
        self.worker = None

    def start_worker(self):
        self.worker = subprocess.Popen(
            [SEEDPROOF, "worker", "--coordinator", self.address, "--id", "honest",
             "--token-file", str(self.dir / "token"), "--metrics-listen", ""],
            stdout=open(self.dir / "worker.log", "w"), stderr=subprocess.STDOUT)

    def state(self):
        return self.studies.Get(pb.SweepRef(sweep_id=self.sweep), metadata=AUTH, timeout=30)

    def finish(self):
        wait_for("the sweep to end", lambda: self.state().state != pb.SWEEP_RUNNING, 600)
        self.worker.send_signal(signal.SIGTERM)
        self.worker.wait(60)

    def results(self):
        """Each result line as stored, in plan order."""
        return [json.loads(r.json) for r in
                self.studies.Results(pb.SweepRef(sweep_id=self.sweep), metadata=AUTH, timeout=60)]

    def stop(self):
        for p in (self.worker, self.process):
            if p is not None and p.poll() is None:
                p.kill()
                p.wait()


AUTH = [("authorization", "Bearer " + TOKEN)]


def strip_timings(value):
    if isinstance(value, dict):
        return {k: strip_timings(v) for k, v in value.items() if "seconds" not in k}
    if isinstance(value, list):
        return [strip_timings(v) for v in value]
    return value


def code_of(call, *args, **kwargs):
    """The status code a unary call ends with (OK when it returns)."""
    try:
        call(*args, timeout=60, **kwargs)
        return grpc.StatusCode.OK
    except grpc.RpcError as e:
        return e.code()


def expect(what, code, call, *args, metadata=AUTH, detail=None):
    try:
        call(*args, metadata=metadata, timeout=60)
        got, message = grpc.StatusCode.OK, ""
    except grpc.RpcError as e:
        got, message = e.code(), e.details() or ""
    check(got == code, "%s: expected %s, got %s (%s)" % (what, code, got, message[:200]))
    if detail is not None:
        check(detail in message, "%s: the message says %r: %s" % (what, detail, message[:300]))
    return message


def upload(c, attempt_id, data, sha=None, metadata=AUTH, abandon=False):
    import hashlib
    sha = sha or hashlib.sha256(data).hexdigest()

    def chunks():
        for offset in range(0, max(len(data), 1), 1 << 20):
            chunk = pb.ArtifactChunk(data=data[offset:offset + (1 << 20)])
            if offset == 0:
                chunk.sha256, chunk.attempt_id = sha, attempt_id
            yield chunk
            if abandon:
                raise RuntimeError("the client walks away mid-upload")
    try:
        c.trials.UploadArtifact(chunks(), metadata=metadata, timeout=60)
        return grpc.StatusCode.OK, sha, ""
    except grpc.RpcError as e:
        return e.code(), sha, e.details() or ""


# ---- Every RPC without a token and with a wrong one ----
def every_call(c):
    t, s = c.trials, c.studies
    return [
        ("Submit", s.Submit, pb.SubmitRequest(spec_text=SPEC)),
        ("Get", s.Get, pb.SweepRef(sweep_id=c.sweep)),
        ("List", s.List, pb.ListRequest()),
        ("Cancel", s.Cancel, pb.SweepRef(sweep_id=c.sweep)),
        ("Register", t.Register, pb.RegisterRequest(worker_id="mallory", threads=1)),
        ("Lease", t.Lease, pb.LeaseRequest(worker_id="honest")),
        ("Heartbeat", t.Heartbeat, pb.AttemptRef(attempt_id=1)),
        ("ReportEpoch", t.ReportEpoch, pb.EpochReport(attempt_id=1)),
        ("Complete", t.Complete, pb.CompleteRequest(attempt_id=1, result_json="{}")),
        ("Fail", t.Fail, pb.FailRequest(attempt_id=1, reason="x")),
        ("Release", t.Release, pb.AttemptRef(attempt_id=1)),
        ("SweepSpec", t.SweepSpec, pb.SweepRef(sweep_id=c.sweep)),
    ]


def streams(c, metadata):
    """The streaming calls' status codes with this metadata."""
    codes = []
    for call, request in ((c.studies.Watch, pb.SweepRef(sweep_id=c.sweep)),
                          (c.studies.Results, pb.SweepRef(sweep_id=c.sweep)),
                          (c.trials.DownloadArtifact, pb.ArtifactRef(sha256="0" * 64))):
        try:
            for _ in call(request, metadata=metadata, timeout=30):
                pass
            codes.append(grpc.StatusCode.OK)
        except grpc.RpcError as e:
            codes.append(e.code())
    codes.append(upload(c, 1, b"x", metadata=metadata)[0])
    return codes


def unauthenticated(c):
    for metadata in ([], [("authorization", "Bearer " + TOKEN[:-1] + "X")],
                     [("authorization", TOKEN)], [("authorization", "Bearer ")]):
        for name, call, request in every_call(c):
            expect("%s with %r" % (name, metadata), grpc.StatusCode.UNAUTHENTICATED, call, request,
                   metadata=metadata)
        check(all(code == grpc.StatusCode.UNAUTHENTICATED for code in streams(c, metadata)),
              "streams with %r are unauthenticated" % (metadata,))


def malformed(c):
    I = grpc.StatusCode.INVALID_ARGUMENT
    t = c.trials
    expect("Register without an id", I, t.Register, pb.RegisterRequest(threads=1), detail="worker_id")
    expect("Register with 0 threads", I, t.Register, pb.RegisterRequest(worker_id="m", threads=0),
           detail="threads")
    expect("Lease with a negative wait", I, t.Lease,
           pb.LeaseRequest(worker_id="honest", wait_ms=-1), detail="wait_ms")
    expect("Complete with no JSON", I, t.Complete,
           pb.CompleteRequest(attempt_id=1, result_json="{not json"), detail="result_json")
    expect("ReportEpoch with a list", I, t.ReportEpoch,
           pb.EpochReport(attempt_id=1, epoch_json=["[1, 2]"]), detail="epoch_json")
    expect("Submit with nothing", I, c.studies.Submit, pb.SubmitRequest(), detail="spec_text")
    expect("Submit with YAML garbage", I, c.studies.Submit,
           pb.SubmitRequest(spec_text="name: [unclosed", spec_path="g.yaml"), detail="g.yaml")
    expect("a path as an artifact id", I, lambda r, **k: list(t.DownloadArtifact(r, **k)),
           pb.ArtifactRef(sha256="../../etc/passwd"), detail="sha256")
    expect("an unknown sweep", grpc.StatusCode.NOT_FOUND, c.studies.Get,
           pb.SweepRef(sweep_id="s000000000000"))


def out_of_order(c):
    N = grpc.StatusCode.NOT_FOUND
    t = c.trials
    expect("Lease before Register", N, t.Lease, pb.LeaseRequest(worker_id="never-registered"))
    for attempt_id in (0, 1, 2, random.getrandbits(62)):
        expect("Heartbeat of attempt %d" % attempt_id, N, t.Heartbeat,
               pb.AttemptRef(attempt_id=attempt_id))
        expect("Fail of attempt %d" % attempt_id, N, t.Fail,
               pb.FailRequest(attempt_id=attempt_id, reason="sabotage"))
        expect("Release of attempt %d" % attempt_id, N, t.Release,
               pb.AttemptRef(attempt_id=attempt_id))
    code, _, _ = upload(c, random.getrandbits(62), b"orphan")
    check(code == N, "an upload for an attempt never issued: %s" % code)


def hostile_specs(c):
    """Findings 1 and 6."""
    s = c.studies
    big = SPEC + "#" + "x" * MAX_SPEC
    expect("a spec past 1 MiB", grpc.StatusCode.INVALID_ARGUMENT, s.Submit,
           pb.SubmitRequest(spec_text=big), detail="at most %d" % MAX_SPEC)
    expect("a spec past the message limit", grpc.StatusCode.RESOURCE_EXHAUSTED, s.Submit,
           pb.SubmitRequest(spec_text="#" * (MAX_MESSAGE + 1)))
    expect("an 8 MiB path", grpc.StatusCode.INVALID_ARGUMENT, s.Submit,
           pb.SubmitRequest(spec_text=SPEC, spec_path="p" * (MAX_MESSAGE - 4096)),
           detail="spec_path")
    keys = "name: x\n" + "".join("k%d: 1\n" % i for i in range(60000))[:MAX_SPEC - 16]
    start = time.time()
    message = expect("60,000 unknown keys", grpc.StatusCode.INVALID_ARGUMENT, s.Submit,
                     pb.SubmitRequest(spec_text=keys, spec_path="keys.yaml"), detail="more errors")
    check("keys.yaml:2:1: k0: unknown key" in message, "the first error comes first: " + message[:200])
    print("60,000 unknown keys refused in %.2f s" % (time.time() - start), flush=True)


def register_bounds(c):
    """Finding 5's unbounded strings."""
    I = grpc.StatusCode.INVALID_ARGUMENT
    t = c.trials
    expect("a 4 MiB cpu_isa", I, t.Register,
           pb.RegisterRequest(worker_id="m", threads=1, cpu_isa="a" * (4 << 20)), detail="cpu_isa")
    expect("100,000 backends", I, t.Register,
           pb.RegisterRequest(worker_id="m", threads=1, backends=["onednn"] * 100000),
           detail="backends")
    expect("a 1 MiB worker id", I, t.Register,
           pb.RegisterRequest(worker_id="w" * (1 << 20), threads=1), detail="worker_id")


def lease_as_mallory(c):
    """A lease of mallory's own, or None when nothing is ready now."""
    lease = c.trials.Lease(pb.LeaseRequest(worker_id="mallory", wait_ms=200), metadata=AUTH,
                           timeout=60)
    return lease if lease.leased else None


def with_a_lease(c, honest_results, kinds):
    """Findings 2, 3, 4, 5 (uploads) and 7 on leases of mallory's own, each given
    back uncounted at the end. Returns how many leases it held."""
    I, F = grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.FAILED_PRECONDITION
    t = c.trials
    lease = lease_as_mallory(c)
    if lease is None:
        return 0
    truth = honest_results.get(lease.trial_id)
    kinds.append(truth["kind"] if truth else "unknown")
    if truth is not None:
        # The honest run's result for this very trial, each with one field a lie.
        tampered = {
            "test_accuracy": dict(truth, test_accuracy=7),
            "seed_index": dict(truth, seed_index=1 << 40),
            "test_examples": dict(truth, test_examples=-5),
            "arm": dict(truth, arm="someone-elses-arm"),
            "kind": dict(truth, kind="scratch" if truth["kind"] != "scratch" else "transfer"),
            "diverged_epoch": dict(truth, outcome="diverged", diverged_epoch=99, epochs=[]),
        }
        for field, result in tampered.items():
            expect("Complete with a false %s" % field, I, t.Complete,
                   pb.CompleteRequest(attempt_id=lease.attempt_id, result_json=json.dumps(result),
                                      model_sha256=result.get("model_sha256", "")), detail=field)
        if truth["kind"] == "pretrain":
            # Finding 3: a model this attempt never uploaded (someone's dataset or model).
            other = dict(truth, model_sha256="ab" * 32)
            expect("Complete naming a model never uploaded", F, t.Complete,
                   pb.CompleteRequest(attempt_id=lease.attempt_id, result_json=json.dumps(other),
                                      model_sha256="ab" * 32), detail="never put")
            garbage = b"not a model" * 100
            code, sha, _ = upload(c, lease.attempt_id, garbage)
            check(code == grpc.StatusCode.OK, "mallory's own upload: %s" % code)
            other = dict(truth, model_sha256=sha)
            expect("Complete naming garbage it uploaded", I, t.Complete,
                   pb.CompleteRequest(attempt_id=lease.attempt_id, result_json=json.dumps(other),
                                      model_sha256=sha), detail="names no model")
            expect("a request hash that differs from the result's", I, t.Complete,
                   pb.CompleteRequest(attempt_id=lease.attempt_id,
                                      result_json=json.dumps(truth), model_sha256="cd" * 32),
                   detail="model_sha256")
    # Finding 4: ids near mallory's own reach nothing.
    for d in list(range(-20, 0)) + list(range(1, 21)):
        expect("Fail of a guessed id", grpc.StatusCode.NOT_FOUND, t.Fail,
               pb.FailRequest(attempt_id=lease.attempt_id + d, reason="sabotage"))
    # Finding 5: a big upload on its own lease is collected once the lease is given back.
    code, big_sha, _ = upload(c, lease.attempt_id, os.urandom(20 << 20))
    check(code == grpc.StatusCode.OK, "a 20 MiB upload on mallory's lease: %s" % code)
    # An upload abandoned mid-stream stores nothing and leaves the server serving.
    upload(c, lease.attempt_id, os.urandom(3 << 20), abandon=True)
    expect("Release of mallory's lease", grpc.StatusCode.OK, t.Release,
           pb.AttemptRef(attempt_id=lease.attempt_id))
    try:
        list(t.DownloadArtifact(pb.ArtifactRef(sha256=big_sha), metadata=AUTH, timeout=60))
        code = grpc.StatusCode.OK
    except grpc.RpcError as e:
        code = e.code()
    check(code == grpc.StatusCode.NOT_FOUND, "the released lease's upload was collected: %s" % code)
    # Finding 7: uploading on the released attempt is refused, naming how it ended.
    code, _, message = upload(c, lease.attempt_id, b"late")
    check(code == F and "released" in message, "an upload on a released attempt: %s %s" %
          (code, message))
    if truth:  # a late completion, however true, changes nothing
        reply = t.Complete(pb.CompleteRequest(attempt_id=lease.attempt_id,
                                              result_json=json.dumps(truth),
                                              model_sha256=truth["model_sha256"]),
                           metadata=AUTH, timeout=60)
        check(not reply.accepted, "a completion of the released attempt is not accepted")
    return 1


def main():
    calm = Coordinator("undisturbed")
    try:
        calm.start_worker()
        calm.finish()
        honest = calm.results()
    finally:
        calm.stop()
    by_trial = {line["trial_id"]: line for line in honest}
    honest = [strip_timings(line) for line in honest]
    check(len(honest) == TRIALS and all(l["outcome"] == "completed" for l in honest),
          "the undisturbed run completed its %d trials (%d results)" % (TRIALS, len(honest)))

    c = Coordinator("attacked")
    try:
        c.trials.Register(pb.RegisterRequest(worker_id="mallory", threads=1), metadata=AUTH,
                          timeout=30)
        # Mallory takes the first lease, the pretrain, before the worker starts.
        kinds = []
        first = lease_as_mallory(c)
        check(first is not None and by_trial[first.trial_id]["kind"] == "pretrain",
              "mallory holds the pretrain")
        expect("Release of the pretrain", grpc.StatusCode.OK, c.trials.Release,
               pb.AttemptRef(attempt_id=first.attempt_id))
        leases = with_a_lease(c, by_trial, kinds)
        c.start_worker()
        rounds = 0
        stop = threading.Event()

        def crowd(i):
            n = 0
            while not stop.is_set():
                (unauthenticated if i % 2 else out_of_order)(c)
                malformed(c)
                n += 1
            return n

        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            crowd_rounds = [pool.submit(crowd, i) for i in range(14)]
            hostile = [pool.submit(hostile_specs, c), pool.submit(register_bounds, c)]
            while c.state().state == pb.SWEEP_RUNNING:
                leases += with_a_lease(c, by_trial, kinds)
                rounds += 1
            stop.set()
            done = sum(f.result() for f in crowd_rounds)
            for f in hostile:
                f.result()
        print("%d rounds of the crowd's attacks, %d of mallory's on %d leases" %
              (done, rounds, leases), flush=True)
        print("mallory's leases: %s" % ", ".join(kinds), flush=True)
        check(kinds[:1] == ["pretrain"] and len(kinds) > 1,
              "mallory held the pretrain, and leases while the worker ran")
        c.finish()
        check(c.process.poll() is None, "the attacked coordinator is still up")
        check(c.studies.List(pb.ListRequest(), metadata=AUTH, timeout=30).sweeps[0].sweep_id ==
              c.sweep, "it still answers, with only the honest sweep stored")
        attacked = [strip_timings(line) for line in c.results()]
        check(attacked == honest, "the attacked run's results equal the undisturbed run's")
        if attacked != honest:
            for a, h in zip(attacked, honest):
                if a != h:
                    print("first difference:\n  %s\n  %s" % (json.dumps(a)[:400],
                                                             json.dumps(h)[:400]))
                    break
        db = sqlite3.connect(str(c.dir / "db"))
        counted = db.execute("SELECT count(*) FROM attempts WHERE state IN ('failed', 'expired')"
                             ).fetchone()[0]
        check(counted == 0, "no attempt failed or expired (%d did)" % counted)
        stray = db.execute("SELECT count(*) FROM artifacts a WHERE NOT EXISTS (SELECT 1 FROM "
                           "trials t WHERE t.model_sha256 = a.sha256)").fetchone()[0]
        check(stray == 0, "every stored artifact is a trial's model (%d are not)" % stray)
    finally:
        c.stop()
    print("%d failures" % len(failures))
    sys.exit(1 if failures else 0)


main()
