#!/usr/bin/python3
"""The metrics, the dashboard and the alert rules against the real Prometheus.

Usage: prometheus_test.py PATH/TO/seedproof

Starts on 127.0.0.1 only: a coordinator (metrics on a free port, workers'
addresses in a file_sd file), a worker, and Debian's Prometheus with the
project's deploy/prometheus/ config (1 s scrape and rule evaluation, the ports
and paths of this test). Runs a small sweep, then through Prometheus' HTTP API:
  - every seedproof_* metric the coordinator and the worker expose has data;
  - `promtool check metrics` accepts both /metrics outputs, `promtool check
    rules` the alert rules;
  - every PromQL expression of the Grafana dashboard returns data ($sweep: all);
  - every recording rule returns data, and every alert expression does too when
    its threshold comparison is made a `bool` one;
  - stopping the worker makes SeedproofWorkerDown pending (or firing).
Everything started is stopped at the end, also on failure."""
import json, os, pathlib, re, shutil, signal, socket, subprocess, sys, tempfile, time
import urllib.parse, urllib.request

SEEDPROOF = sys.argv[1]
REPO = pathlib.Path(__file__).resolve().parents[2]
PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"

failures = []
processes = []


def check(ok, what):
    print(("ok      " if ok else "FAILED  ") + what, flush=True)
    if not ok:
        failures.append(what)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(args, log):
    p = subprocess.Popen(args, stdout=open(log, "w"), stderr=subprocess.STDOUT,
                         start_new_session=True)
    processes.append(p)
    return p


def stop(p):
    if p.poll() is None:
        os.killpg(p.pid, signal.SIGTERM)
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()


def wait_for(what, predicate, seconds=60):
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except (OSError, ValueError, KeyError, IndexError):
            pass
        time.sleep(0.5)
    raise RuntimeError("timed out waiting for " + what)


def get(url):
    with urllib.request.urlopen(url, timeout=10) as r:
        return r.read().decode()


def query(prom, expr):
    url = "http://%s/api/v1/query?%s" % (prom, urllib.parse.urlencode({"query": expr}))
    reply = json.loads(get(url))
    if reply["status"] != "success":
        raise ValueError(reply)
    return reply["data"]["result"]


def metric_names(text):
    """The seedproof_* families of a /metrics page, as series names that carry data."""
    names = []
    for line in text.splitlines():
        m = re.match(r"# TYPE (seedproof_\w+) (\w+)", line)
        if m:
            names.append(m.group(1) + ("_count" if m.group(2) in ("histogram", "summary") else ""))
    return names


def promtool_metrics(text, what):
    r = subprocess.run([PROMTOOL, "check", "metrics"], input=text, capture_output=True, text=True)
    check(r.returncode == 0, "promtool check metrics accepts the %s's /metrics %s" %
          (what, r.stdout + r.stderr if r.returncode else ""))


def main():
    work = pathlib.Path(tempfile.mkdtemp(prefix="seedproof-prometheus-"))
    try:
        run(work)
    finally:
        for p in reversed(processes):
            stop(p)
        if not failures:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print("logs kept in", work)


def run(work):
    (work / "token").write_text("prometheus-test-token-0123456789\n")
    shutil.copy(REPO / "tests/testdata/tiny-study.yaml", work / "spec.yaml")
    token = ["--token-file", str(work / "token")]
    start([SEEDPROOF, "coordinator", "--listen", "127.0.0.1:0", "--db", str(work / "db"),
           "--port-file", str(work / "ports"), "--metrics-listen", "127.0.0.1:0",
           "--worker-sd-file", str(work / "workers.json"), "--lease-ms", "3000",
           "--heartbeat-ms", "500"] + token, work / "coordinator.log")
    ports = wait_for("the coordinator's ports",
                     lambda: [int(x) for x in (work / "ports").read_text().split()], 30)
    grpc, coordinator_metrics = "127.0.0.1:%d" % ports[0], "127.0.0.1:%d" % ports[1]

    # The project's Prometheus config with this test's addresses and a 1 s cadence.
    config = (REPO / "deploy/prometheus/prometheus.yml").read_text()
    config = config.replace("scrape_interval: 15s", "scrape_interval: 1s")
    config = config.replace("evaluation_interval: 15s", "evaluation_interval: 1s")
    config = config.replace("127.0.0.1:9464", coordinator_metrics)
    config = config.replace("/var/lib/seedproof/workers.json", str(work / "workers.json"))
    config = config.replace("refresh_interval: 30s", "refresh_interval: 1s")
    (work / "prometheus.yml").write_text(config)
    shutil.copy(REPO / "deploy/prometheus/alerts.yml", work / "alerts.yml")
    r = subprocess.run([PROMTOOL, "check", "rules", str(work / "alerts.yml")],
                       capture_output=True, text=True)
    check(r.returncode == 0, "promtool check rules deploy/prometheus/alerts.yml " +
          (r.stdout + r.stderr if r.returncode else ""))
    prom = "127.0.0.1:%d" % free_port()
    start([PROMETHEUS, "--config.file", str(work / "prometheus.yml"), "--web.listen-address",
           prom, "--storage.tsdb.path", str(work / "tsdb"), "--storage.tsdb.retention.time", "1h",
           "--log.level", "warn"], work / "prometheus.log")

    worker = start([SEEDPROOF, "worker", "--coordinator", grpc, "--id", "w1",
                    "--metrics-listen", "127.0.0.1:0"] + token, work / "worker.log")
    worker_metrics = wait_for("the worker in the file_sd file", lambda: json.loads(
        (work / "workers.json").read_text())[0]["targets"][0], 30)
    sweep = subprocess.run([SEEDPROOF, "submit", str(work / "spec.yaml"), "--coordinator", grpc] +
                           token, capture_output=True, text=True, check=True).stdout.strip()
    print("sweep", sweep, "coordinator metrics", coordinator_metrics, "worker metrics",
          worker_metrics, "prometheus", prom, flush=True)

    wait_for("the sweep to finish, seen by Prometheus", lambda: any(
        float(s["value"][1]) == 1.0 for s in
        query(prom, 'seedproof_sweep_progress_ratio{sweep="%s"}' % sweep)), 120)
    # Two more scrapes of every target, so that rates over the run have two
    # points or more.
    def scrapes():
        return {r["metric"]["instance"]: float(r["value"][1])
                for r in query(prom, "count_over_time(up[10m])")}
    before = scrapes()

    def two_more():
        now = scrapes()
        return len(now) >= 2 and all(n >= before.get(i, 0) + 2 for i, n in now.items())
    wait_for("two more scrapes of the coordinator and the worker", two_more, 30)

    coordinator_text = get("http://%s/metrics" % coordinator_metrics)
    worker_text = get("http://%s/metrics" % worker_metrics)
    promtool_metrics(coordinator_text, "coordinator")
    promtool_metrics(worker_text, "worker")
    names = metric_names(coordinator_text) + metric_names(worker_text)
    check(len(names) >= 20, "%d seedproof_* series families exposed" % len(names))
    for name in names:
        check(len(query(prom, name)) > 0, "Prometheus has data for " + name)

    dashboard = json.loads((REPO / "deploy/grafana/dashboards/seedproof.json").read_text())
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            expr = target["expr"].replace("$sweep", ".+")
            check(len(query(prom, expr)) > 0,
                  "dashboard '%s': %s" % (panel["title"], target["expr"]))

    rules = json.loads(get("http://%s/api/v1/rules" % prom))["data"]["groups"]
    alert_names = []
    for group in rules:
        for rule in group["rules"]:
            expr = rule["query"]
            if rule["type"] == "alerting":
                alert_names.append(rule["name"])
                expr = re.sub(r"(==|!=|>=|<=|>|<)\s*([-+0-9.e]+)\s*$", r"\1 bool \2", expr)
            check(len(query(prom, expr)) > 0,
                  "rule %s: %s" % (rule.get("name"), expr))
    check(sorted(alert_names) == ["SeedproofFailureRateHigh", "SeedproofSweepStalled",
                                  "SeedproofWorkerDown", "SeedproofWorkerNoHeartbeat"],
          "the four alerts are loaded: %s" % alert_names)

    # Stop the worker: its scrapes fail and the alert goes pending.
    stop(worker)

    def worker_down():
        alerts = json.loads(get("http://%s/api/v1/alerts" % prom))["data"]["alerts"]
        return [a for a in alerts if a["labels"]["alertname"] == "SeedproofWorkerDown"
                and a["state"] in ("pending", "firing")]
    try:
        down = wait_for("SeedproofWorkerDown", worker_down, 30)
        check(True, "SeedproofWorkerDown is %s for %s after the worker stopped" %
              (down[0]["state"], down[0]["labels"]["instance"]))
    except RuntimeError as e:
        check(False, str(e))


if __name__ == "__main__":
    started = time.time()
    main()
    print("%d failures, %.1f s" % (len(failures), time.time() - started))
    sys.exit(1 if failures else 0)
