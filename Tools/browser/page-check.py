#!/usr/bin/python3
"""Drives a real browser (Debian's chromium, headless) over the DevTools protocol on a pipe
(--remote-debugging-pipe: fds 3 and 4, one JSON message per NUL; no port, no websocket), for
the status page's tests. It opens URL, then waits until the text of SELECTOR contains every
--expect string (and none of --reject), reading the rendered DOM every 50 ms, at most
--timeout seconds. Before waiting it may run --then (a command: the fault the test injects
once the page shows its first state). Prints one JSON line: ok, elapsed_ms (from --then,
or from the load), the text seen; writes --screenshot (PNG) of the final state.
Exit 0 when the expected text appeared in time, 1 when not, 2 when the browser failed."""

import argparse
import base64
import select
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time


class Browser:
    def __init__(self, binary):
        self.profile = tempfile.mkdtemp(prefix="vcom-chromium-")
        to_chrome_r, self.to_chrome = os.pipe()
        self.from_chrome, from_chrome_w = os.pipe()
        # The child gets its ends as fds 3 and 4 (what --remote-debugging-pipe reads and
        # writes); moved above 10 first, so that the dup2s below cannot overwrite each other.
        child_read, child_write = os.dup(to_chrome_r), os.dup(from_chrome_w)
        while child_read < 10 or child_write < 10:
            child_read, child_write = os.dup(child_read), os.dup(child_write)
        def setup():
            os.dup2(child_read, 3)
            os.dup2(child_write, 4)
        self.process = subprocess.Popen(
            [binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
             "--remote-debugging-pipe", "--user-data-dir=" + self.profile, "--window-size=1280,900", "about:blank"],
            preexec_fn=setup, pass_fds=(3, 4, child_read, child_write), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(child_read)
        os.close(child_write)
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self.next_id = 0
        self.buffer = b""

    def call(self, method, params=None, session=None, timeout=10):
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self.to_chrome, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            while b"\0" in self.buffer:
                raw, self.buffer = self.buffer.split(b"\0", 1)
                reply = json.loads(raw)
                if reply.get("id") == self.next_id:
                    if "error" in reply:
                        raise RuntimeError(f"{method}: {reply['error']}")
                    return reply.get("result", {})
            ready, _, _ = select.select([self.from_chrome], [], [], max(0.0, deadline - time.monotonic()))
            if ready:
                chunk = os.read(self.from_chrome, 1 << 20)
                if not chunk:
                    raise RuntimeError("the browser closed its pipe")
                self.buffer += chunk
        raise RuntimeError(f"{method}: no answer within {timeout} s")

    def close(self):
        try:
            self.call("Browser.close", timeout=3)
        except Exception:
            pass
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        shutil.rmtree(self.profile, ignore_errors=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("url")
    parser.add_argument("--selector", default="body")
    parser.add_argument("--expect", action="append", default=[])
    parser.add_argument("--reject", action="append", default=[])
    parser.add_argument("--first", action="append", default=[], help="text the page must show before --then runs")
    parser.add_argument("--then", help="a shell command run once the page shows --first")
    parser.add_argument("--timeout", type=float, default=5)
    parser.add_argument("--screenshot")
    parser.add_argument("--browser", default=shutil.which("chromium") or "/usr/bin/chromium")
    parser.add_argument("--sample", metavar="FILE", help="instead of waiting: append the banner every 250 ms to FILE (JSON lines) until SIGTERM")
    parser.add_argument("--ready-file", help="with --sample: a server's ready file; its metrics address is the page (re-read, followed across restarts)")
    parser.add_argument("--name", default="page", help="with --sample: the name written in each line")
    args = parser.parse_args()

    if not os.path.exists(args.browser):
        print(json.dumps({"ok": False, "error": f"no browser at {args.browser} (Tools/scripts/ensure-deps.sh installs chromium)"}))
        return 2
    browser = Browser(args.browser)
    if args.sample:
        try:
            return sample(browser, args)
        finally:
            browser.close()
    try:
        target = browser.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = browser.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        browser.call("Page.enable", session=session)
        browser.call("Page.navigate", {"url": args.url}, session=session)

        def text():
            expression = f"(() => {{ const e = document.querySelector({json.dumps(args.selector)}); return e ? e.innerText : '' }})()"
            result = browser.call("Runtime.evaluate", {"expression": expression, "returnByValue": True}, session=session)
            return result.get("result", {}).get("value", "") or ""

        def wait_for(expect, reject, seconds):
            deadline = time.monotonic() + seconds
            seen = ""
            while True:
                seen = text()
                if all(e in seen for e in expect) and not any(r in seen for r in reject):
                    return True, seen
                if time.monotonic() >= deadline:
                    return False, seen
                time.sleep(0.05)

        started = time.monotonic()
        if args.first:
            ok, seen = wait_for(args.first, [], args.timeout)
            if not ok:
                print(json.dumps({"ok": False, "phase": "first", "text": seen}))
                return 1
            if args.screenshot:
                shot(browser, session, args.screenshot.replace(".png", "-before.png"))
        if args.then:
            subprocess.run(args.then, shell=True, check=False)
            started = time.monotonic()
        ok, seen = wait_for(args.expect, args.reject, args.timeout)
        elapsed = int((time.monotonic() - started) * 1000)
        if args.screenshot:
            shot(browser, session, args.screenshot)
        print(json.dumps({"ok": ok, "elapsed_ms": elapsed, "text": seen}))
        return 0 if ok else 1
    except Exception as error:
        print(json.dumps({"ok": False, "error": str(error)}))
        return 2
    finally:
        browser.close()


def sample(browser, args):
    """The chaos suite's page watcher: one line per 250 ms with what the page shows (its banner,
    and whether it marks its server as not answering), so the checker can compare the page with
    the records. A restarted server listens on a new port: the page follows its ready file."""
    import signal
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(1))
    target = browser.call("Target.createTarget", {"url": "about:blank"})["targetId"]
    session = browser.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
    browser.call("Page.enable", session=session)
    current = None
    expression = ("(() => { const b = document.getElementById('banner'); const u = document.getElementById('updated');"
                  " return JSON.stringify({banner: b ? b.innerText : '', stale: !!(u && u.classList.contains('stale'))}) })()")
    with open(args.sample, "a") as out:
        while not stopping:
            url = args.url
            if args.ready_file:
                try:
                    with open(args.ready_file) as ready:
                        url = "http://" + json.load(ready)["metrics"] + "/"
                except Exception:
                    url = current or args.url
            if url != current:
                browser.call("Page.navigate", {"url": url}, session=session)
                current = url
                time.sleep(0.5)
            try:
                value = browser.call("Runtime.evaluate", {"expression": expression, "returnByValue": True}, session=session, timeout=5)
                seen = json.loads(value.get("result", {}).get("value", "{}") or "{}")
            except Exception as error:
                seen = {"banner": "", "stale": True, "error": str(error)}
            seen.update({"t": int(time.time() * 1000), "page": args.name, "url": current})
            out.write(json.dumps(seen) + "\n")
            out.flush()
            time.sleep(0.25)
    return 0


def shot(browser, session, path):
    data = browser.call("Page.captureScreenshot", {"format": "png"}, session=session)["data"]
    with open(path, "wb") as file:
        file.write(base64.b64decode(data))


if __name__ == "__main__":
    sys.exit(main())
