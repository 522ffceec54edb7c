#!/usr/bin/python3
"""Render a self-contained HTML page in headless Chromium and check it.

Usage: check_html.py [--expect TEXT]... [--full-page] [--timeout S] PAGE.html SCREENSHOT.png

Drives Chromium over the DevTools protocol on --remote-debugging-pipe (fds 3/4,
NUL-separated JSON; no TCP port is opened) and fails (exit 1) if the page
  - logs a console error (console.error/console.assert, or a browser-side
    error such as a failed load or CSP violation),
  - throws an uncaught JavaScript exception (incl. unhandled rejections),
  - requests anything outside the page itself (http/https/ws/file/...; such
    requests are also blocked, so nothing goes out on the network),
  - cannot be screenshotted to SCREENSHOT.png (must be a non-empty PNG),
  - does not contain each --expect TEXT in its rendered text (body.innerText).
A screenshot is still written for a failing page when possible.
Exit 0 prints: "PAGE: rendered, no console errors, screenshot SHOT (N bytes)".
Exit 2 means bad usage or no Chromium. Everything (chromium included) is done
and killed within about --timeout seconds. Python 3 stdlib only; runs as root.
Set CHROMIUM=/path/to/binary to override the browser.
"""
import argparse, base64, fcntl, json, os, pathlib, selectors, shutil
import signal, subprocess, sys, tempfile, time

LOCAL_SCHEMES = ("data:", "blob:", "about:", "chrome-error:")
FLAGS = [
    "--headless", "--no-sandbox", "--remote-debugging-pipe",
    "--no-first-run", "--no-default-browser-check", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-default-apps",
    "--disable-extensions", "--disable-domain-reliability", "--disable-breakpad",
    "--disable-client-side-phishing-detection", "--no-pings", "--metrics-recording-only",
    "--disable-features=Translate,OptimizationHints,MediaRouter,AutofillServerCommunication",
    "--host-resolver-rules=MAP * ~NOTFOUND",  # belt and braces: no DNS at all
    "--disable-gpu", "--disable-dev-shm-usage", "--hide-scrollbars", "--mute-audio",
    "--password-store=basic", "--window-size=1280,1024", "about:blank",
]


def find_chromium():
    for cand in (os.environ.get("CHROMIUM"), "/usr/lib/chromium/chromium",
                 shutil.which("chromium"), shutil.which("chromium-browser")):
        if cand and os.access(cand, os.X_OK):
            return cand
    return None


class Cdp:
    """Minimal DevTools client over a pipe pair, with a hard deadline."""

    def __init__(self, wfd, rfd, deadline, on_event):
        self.wfd, self.rfd, self.deadline, self.on_event = wfd, rfd, deadline, on_event
        self.sel = selectors.DefaultSelector()
        self.sel.register(rfd, selectors.EVENT_READ)
        self.buf, self.next_id, self.replies = b"", 0, {}

    def send(self, method, params=None, session=None):
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        data = json.dumps(msg).encode() + b"\0"
        while data:
            data = data[os.write(self.wfd, data):]
        return self.next_id

    def call(self, method, params=None, session=None):
        mid = self.send(method, params, session)
        self.pump(lambda: mid in self.replies, what=method)
        reply = self.replies.pop(mid)
        if "error" in reply:
            raise RuntimeError(f"{method} failed: {reply['error'].get('message')}")
        return reply.get("result", {})

    def pump(self, done, what, until=None):
        """Read messages until done(), or until `until` (a monotonic time)."""
        while not done():
            now = time.monotonic()
            if until is not None and now >= until:
                return
            if now >= self.deadline:
                raise TimeoutError(f"timed out waiting for {what}")
            if not self.sel.select(min(self.deadline, until or self.deadline) - now):
                continue
            chunk = os.read(self.rfd, 1 << 20)
            if not chunk:
                raise EOFError(f"chromium exited while waiting for {what}")
            self.buf += chunk
            if b"\0" not in chunk:  # big replies (screenshots) arrive in many chunks
                continue
            *msgs, self.buf = self.buf.split(b"\0")
            for raw in msgs:
                msg = json.loads(raw)
                if "id" in msg:
                    self.replies[msg["id"]] = msg
                else:
                    self.on_event(msg)


def describe(obj):
    """Short text for a Runtime.RemoteObject (a console argument)."""
    if "value" in obj:
        return str(obj["value"])
    return obj.get("description") or obj.get("type", "?")


def where(d):
    url = d.get("url") or ""
    return f" ({url.rsplit('/', 1)[-1]}:{d.get('lineNumber', 0) + 1})" if url else ""


def check(page, shot, args):
    problems, loaded, external = [], [], set()
    page_url = page.as_uri()

    def is_local(url):  # the page itself, or data:/blob:/about: content
        return url.split("#")[0] == page_url or url.startswith(LOCAL_SCHEMES)

    def on_event(msg):
        m, p = msg.get("method"), msg.get("params", {})
        if m == "Runtime.exceptionThrown":
            d = p["exceptionDetails"]
            text = (d.get("exception") or {}).get("description") or d.get("text", "")
            kind = " (in promise)" if "in promise" in d.get("text", "") else ""
            problems.append(f"uncaught exception{kind}: "
                            f"{text.splitlines()[0] if text else '?'}{where(d)}")
        elif m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
            text = " ".join(describe(a) for a in p.get("args", []))
            frames = (p.get("stackTrace") or {}).get("callFrames") or [{}]
            problems.append(f"console.{p['type']}: {text}{where(frames[0])}")
        elif m == "Log.entryAdded" and p["entry"].get("level") == "error":
            e = p["entry"]
            problems.append(f"console error ({e.get('source')}): {e.get('text')}{where(e)}")
        elif m in ("Network.requestWillBeSent", "Network.webSocketCreated", "Fetch.requestPaused"):
            url = (p.get("request") or {}).get("url") or p.get("url", "")
            if not is_local(url) and url not in external:
                external.add(url)
                problems.append(f"external resource requested: {url}")
            if m == "Fetch.requestPaused":  # every request stops here; only local ones go on
                rid, sess = {"requestId": p["requestId"]}, msg["sessionId"]
                if is_local(url):
                    cdp.send("Fetch.continueRequest", rid, sess)
                else:
                    cdp.send("Fetch.failRequest", {**rid, "errorReason": "BlockedByClient"}, sess)
        elif m == "Page.javascriptDialogOpening":  # alert() etc. would block forever
            problems.append(f"JavaScript {p.get('type')} dialog: {p.get('message')}")
            cdp.send("Page.handleJavaScriptDialog", {"accept": False}, msg["sessionId"])
        elif m == "Page.loadEventFired":
            loaded.append(True)

    cmd_r, cmd_w = os.pipe()  # we write commands, chromium reads them on fd 3
    res_r, res_w = os.pipe()  # chromium writes replies on fd 4, we read them
    # Move the child's ends well above 4 so the dup2s below cannot clobber them.
    child_in, child_out = (fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10) for fd in (cmd_r, res_w))
    os.close(cmd_r), os.close(res_w)

    def preexec():
        os.dup2(child_in, 3), os.dup2(child_out, 4)

    with tempfile.TemporaryDirectory(prefix="check_html.") as tmp:
        log = open(os.path.join(tmp, "chromium.log"), "w+")
        # HOME and TMPDIR point into tmp too, so crash dumps, caches and the
        # singleton-socket dir never land in ~root or /tmp.
        env = dict(os.environ, HOME=tmp, TMPDIR=tmp, XDG_CONFIG_HOME=tmp,
                   XDG_CACHE_HOME=tmp, CHECK_HTML_RUN=tmp)  # tag for kill_tagged()
        proc = subprocess.Popen(
            [args.chromium, f"--user-data-dir={tmp}/profile", *FLAGS], env=env,
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, pass_fds=(3, 4),
            preexec_fn=preexec, start_new_session=True)
        os.close(child_in), os.close(child_out)
        # Leave ~8 s of the time limit for shutting chromium down.
        cdp = Cdp(cmd_w, res_r, time.monotonic() + max(5, args.timeout - 8), on_event)
        try:
            tid = cdp.call("Target.createTarget", {"url": "about:blank"})["targetId"]
            sid = cdp.call("Target.attachToTarget", {"targetId": tid, "flatten": True})["sessionId"]
            for domain in ("Runtime", "Log", "Network", "Page"):
                cdp.call(f"{domain}.enable", session=sid)
            cdp.call("Emulation.setDeviceMetricsOverride", {"width": 1280, "height": 1024,
                     "deviceScaleFactor": 1, "mobile": False}, sid)
            cdp.call("Fetch.enable", {"patterns": [{"urlPattern": "*"}]}, sid)
            nav = cdp.call("Page.navigate", {"url": page_url}, sid)
            if nav.get("errorText"):
                problems.append(f"navigation failed: {nav['errorText']}")
            else:
                cdp.pump(lambda: loaded, what="the load event")
                # Two animation frames so layout/paint happened, then a short settle
                # so errors from timers right after load are caught too.
                cdp.call("Runtime.evaluate", {"expression": "new Promise(r => requestAnimationFrame("
                         "() => requestAnimationFrame(r)))", "awaitPromise": True}, sid)
                cdp.pump(lambda: False, "settle", until=time.monotonic() + args.settle)
            text = cdp.call("Runtime.evaluate", {"expression": "document.body ? "
                            "document.body.innerText : ''", "returnByValue": True}, sid)
            text = text["result"].get("value") or ""
            problems += [f"expected text not found: {t!r}" for t in args.expect if t not in text]
            shot_params = {"format": "png"}
            if args.full_page:
                size = cdp.call("Page.getLayoutMetrics", session=sid)["cssContentSize"]
                shot_params.update(captureBeyondViewport=True, clip={
                    "x": 0, "y": 0, "width": size["width"], "scale": 1,
                    "height": min(size["height"], 16384)})
            png = base64.b64decode(cdp.call("Page.captureScreenshot", shot_params, sid)["data"])
            if not png.startswith(b"\x89PNG\r\n\x1a\n"):
                problems.append("screenshot is not a PNG")
            else:
                try:
                    shot.write_bytes(png)
                except OSError as e:
                    problems.append(f"cannot write screenshot: {e}")
        except (OSError, EOFError, RuntimeError) as e:  # incl. timeout, broken pipe
            log.seek(0)  # chromium's stderr, minus the harmless D-Bus complaints
            tail = "".join([ln for ln in log if "dbus" not in ln][-10:])
            problems.append(f"{e}" + (f"\n    chromium log tail:\n{tail}" if tail else ""))
        finally:
            try:  # ask politely first, then kill whatever is left
                cdp.send("Browser.close")
                proc.wait(timeout=3)
            except (OSError, subprocess.TimeoutExpired):
                pass
            kill_tagged(tmp)
            proc.wait()
            os.close(cmd_w), os.close(res_r), log.close()
    return problems


def kill_tagged(tag, limit=5.0):
    """SIGKILL every process whose environment carries CHECK_HTML_RUN=tag: the
    browser, its zygotes/renderers and the crashpad handlers, which daemonize
    out of our process group. Bounded by `limit` seconds."""
    needle, end = f"CHECK_HTML_RUN={tag}\0".encode(), time.monotonic() + limit
    while time.monotonic() < end:
        pids = []
        for d in os.listdir("/proc"):
            try:
                if d.isdigit() and needle in open(f"/proc/{d}/environ", "rb").read():
                    pids.append(int(d))
            except OSError:
                pass  # gone already, or not ours to read
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        time.sleep(0.1)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("page", type=pathlib.Path)
    ap.add_argument("screenshot", type=pathlib.Path)
    ap.add_argument("--expect", action="append", default=[], metavar="TEXT",
                    help="text that must appear in the rendered page (repeatable)")
    ap.add_argument("--full-page", action="store_true", help="screenshot the whole page")
    ap.add_argument("--timeout", type=float, default=60, help="overall limit in seconds (default 60)")
    ap.add_argument("--settle", type=float, default=0.5, help="wait after load, seconds")
    args = ap.parse_args()
    args.chromium = find_chromium()
    if not args.chromium or not args.page.is_file():
        print("check_html.py: " + (f"no such page: {args.page}" if args.chromium else
              "chromium not found (apt-get install chromium)"), file=sys.stderr)
        return 2
    page, shot = args.page.resolve(), args.screenshot
    shot.unlink(missing_ok=True)  # never leave a stale screenshot behind
    problems = check(page, shot, args)
    if not problems and not (shot.is_file() and shot.stat().st_size > 0):
        problems.append(f"no screenshot written to {shot}")
    if problems:
        print(f"{args.page}: FAILED, {len(problems)} problem(s):", file=sys.stderr)
        for p in problems:
            print(f"  - {p}", file=sys.stderr)
        return 1
    print(f"{args.page}: rendered, no console errors, screenshot {shot} "
          f"({shot.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
