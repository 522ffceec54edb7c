"""A Python grpcio client of a live `seedproof coordinator`, written against
proto/seedproof.proto, not the project's C++ client: what the attack test
(tests/attack) and bench/upload_stall.py share.

    pb, pb_grpc = stubs(work)                 # generated here by grpc_tools.protoc
    process, address = start_coordinator(seedproof, folder, token, ["--lease-ms", "600000"])
"""
import pathlib, subprocess, sys, time

from grpc_tools import protoc

ROOT = pathlib.Path(__file__).resolve().parent.parent.parent


def stubs(work):
    """The message and service modules, made from the .proto into work."""
    protoc.main(["protoc", "-I" + str(ROOT / "proto"), "--python_out=" + str(work),
                 "--grpc_python_out=" + str(work), str(ROOT / "proto" / "seedproof.proto")])
    sys.path.insert(0, str(work))
    import seedproof_pb2, seedproof_pb2_grpc
    return seedproof_pb2, seedproof_pb2_grpc


def wait_for(what, ready, seconds):
    """Polls ready() until it holds; exits naming what after a deadline."""
    deadline = time.time() + seconds
    while not ready():
        if time.time() > deadline:
            raise SystemExit("gave up waiting for %s within %d s" % (what, seconds))
        time.sleep(0.05)


def start_coordinator(seedproof, folder, token, args=()):
    """`seedproof coordinator` on 127.0.0.1 (any free port) with its database,
    token and log in folder, no metrics; its process and address once it serves."""
    folder = pathlib.Path(folder)
    (folder / "token").write_text(token + "\n")
    process = subprocess.Popen(
        [str(seedproof), "coordinator", "--listen", "127.0.0.1:0", "--db", str(folder / "db"),
         "--port-file", str(folder / "port"), "--metrics-listen", "",
         "--token-file", str(folder / "token")] + list(args),
        stdout=open(folder / "coordinator.log", "w"), stderr=subprocess.STDOUT)
    port = folder / "port"
    wait_for("the port file", lambda: port.exists() and port.read_text().strip(), 30)
    return process, "127.0.0.1:" + port.read_text().split()[0]
