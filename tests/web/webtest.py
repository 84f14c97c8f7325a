# webtest.py: helpers for the tests of chalk's live page: chalk on a pseudo-terminal, raw HTTP, and a
# small Chrome DevTools Protocol client (over the browser's websocket) to drive headless chromium.
import base64
import json
import os
import pty
import re
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

ANSI = re.compile(r"\x1b(\[[0-?]*[ -/]*[@-~]|\][^\x07]*(\x07|\x1b\\)|_[^\x1b]*\x1b\\|[@-Z\\-_])")


class Collector:
    """A thread that reads a stream (read(n) -> bytes, b"" or OSError at its end) into self.raw."""

    def __init__(self, read):
        self.raw, self.lock = b"", threading.Lock()

        def pump():
            while True:
                try:
                    data = read(65536)
                except OSError:
                    return
                if not data:
                    return
                with self.lock:
                    self.raw += data

        threading.Thread(target=pump, daemon=True).start()

    def bytes(self):
        with self.lock:
            return self.raw


class Report:
    """PASS/FAIL/SKIP lines as the REPL tests print them; exit status 1 when anything failed."""

    def __init__(self, name):
        self.name, self.failures = name, 0

    def check(self, ok, what, detail=""):
        if ok:
            print(f"PASS {self.name}: {what}", flush=True)
        else:
            self.failures += 1
            print(f"FAIL {self.name}: {what}" + (f" ({detail})" if detail else ""), flush=True)
        return ok

    def skip(self, why):
        print(f"SKIP {self.name}: {why}", flush=True)

    def finish(self):
        sys.exit(1 if self.failures else 0)


class Chalk:
    """build/chalk ARGS in a pseudo-terminal (so it is the interactive REPL), as a student types at it."""

    def __init__(self, exe, args, cwd):
        self.master, slave = pty.openpty()
        # lessons from this checkout, wherever the chalk under test lives (an ASan build in /tmp, say)
        env = dict(os.environ, HOME=cwd, TERM="xterm-256color", NO_COLOR="1",
                   CHALK_LESSONS=os.path.abspath("lessons"))
        self.proc = subprocess.Popen([exe] + args, stdin=slave, stdout=slave, stderr=slave, cwd=cwd, env=env,
                                     start_new_session=True)
        os.close(slave)
        self.out = Collector(lambda n: os.read(self.master, n))

    def text(self):
        return ANSI.sub("", self.out.bytes().decode("utf-8", "replace")).replace("\r", "")

    def wait_for(self, pattern, timeout=10.0):
        deadline = time.time() + timeout
        while time.time() < deadline:
            m = re.search(pattern, self.text(), re.M)
            if m:
                return m
            time.sleep(0.01)
        return None

    def type(self, line):
        os.write(self.master, line.encode() + b"\r")

    def url(self):
        m = self.wait_for(r"live page of this session is at (http://[^/\s]+/)", 30)  # slow on a loaded machine
        return m.group(1) if m else None

    def exited(self, timeout):
        try:
            self.proc.wait(timeout)
            return True
        except subprocess.TimeoutExpired:
            return False

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        os.close(self.master)


def raw_request(host, port, data, timeout=5.0):
    """Send bytes, read until the server closes (or timeout); (status or None, whole response)."""
    s = socket.create_connection((host, port), timeout=timeout)
    try:
        s.sendall(data)
        out = b""
        while True:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            if not chunk:
                break
            out += chunk
    finally:
        s.close()
    m = re.match(rb"HTTP/1\.[01] (\d{3})", out)
    return (int(m.group(1)) if m else None), out


def get(host, port, path, timeout=5.0):
    status, out = raw_request(host, port, f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode(),
                              timeout)
    head, _, body = out.partition(b"\r\n\r\n")
    return status, head.decode("latin-1"), body


class SSE:
    """An open /events stream read by a thread; events() are the (event, data) pairs so far."""

    def __init__(self, host, port):
        self.sock = socket.create_connection((host, port), timeout=30)
        self.sock.sendall(f"GET /events HTTP/1.1\r\nHost: {host}\r\nAccept: text/event-stream\r\n\r\n".encode())
        self.out = Collector(self.sock.recv)

    def text(self):
        return self.out.bytes().decode("utf-8", "replace")

    def wait_for(self, needle, timeout=5.0):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if needle in self.text():
                return True
            time.sleep(0.005)
        return False

    def events(self):
        out = []
        for block in re.findall(r"event: (\w+)\ndata: (.*)\n\n", self.text()):
            out.append((block[0], json.loads(block[1])))
        return out

    def close(self):
        self.sock.close()


# ---- headless chromium through the DevTools protocol --------------------------------------------

def find_chromium():
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    return None


class WebSocket:
    """Just enough of RFC 6455 for DevTools: text frames out (masked), text frames in."""

    def __init__(self, url):
        m = re.match(r"ws://([^:/]+):(\d+)(/.*)", url)
        self.sock = socket.create_connection((m.group(1), int(m.group(2))), timeout=30)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((f"GET {m.group(3)} HTTP/1.1\r\nHost: {m.group(1)}:{m.group(2)}\r\nUpgrade: websocket\r\n"
                           f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(1)
            if not chunk:
                raise RuntimeError("the DevTools websocket closed during the handshake")
            head += chunk
        if b" 101 " not in head.split(b"\r\n")[0]:
            raise RuntimeError("DevTools refused the websocket: " + head.decode("latin-1"))

    def _exact(self, n):
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                raise RuntimeError("the DevTools websocket closed")
            data += chunk
        return data

    def send(self, text):
        payload = text.encode()
        head = bytes([0x81])
        n = len(payload)
        if n < 126:
            head += bytes([0x80 | n])
        elif n < 65536:
            head += bytes([0x80 | 126]) + struct.pack(">H", n)
        else:
            head += bytes([0x80 | 127]) + struct.pack(">Q", n)
        mask = os.urandom(4)
        self.sock.sendall(head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))

    def recv(self):
        message = b""
        while True:
            b0, b1 = self._exact(2)
            n = b1 & 0x7F
            if n == 126:
                n = struct.unpack(">H", self._exact(2))[0]
            elif n == 127:
                n = struct.unpack(">Q", self._exact(8))[0]
            payload = self._exact(n)
            if b0 & 0x0F == 0x8:
                raise RuntimeError("the DevTools websocket closed")
            if b0 & 0x0F in (0x9, 0xA):  # ping/pong: not used by DevTools, skip
                continue
            message += payload
            if b0 & 0x80:
                return message.decode()


class Browser:
    """chromium --headless with a DevTools port; page(url) opens a tab and returns its session."""

    def __init__(self, exe):
        self.dir = tempfile.mkdtemp(prefix="chalk-chromium-")
        args = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                "--no-default-browser-check", "--disable-extensions", "--mute-audio", "--remote-debugging-port=0",
                f"--user-data-dir={self.dir}", "--window-size=1280,900", "about:blank"]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        deadline, url = time.time() + 30, None
        while time.time() < deadline and url is None:
            line = self.proc.stderr.readline()
            if not line and self.proc.poll() is not None:
                break
            m = re.search(r"DevTools listening on (ws://\S+)", line)
            if m:
                url = m.group(1)
        if url is None:
            self.close()
            raise RuntimeError("chromium did not open its DevTools port")
        threading.Thread(target=lambda: [None for _ in self.proc.stderr], daemon=True).start()
        self.host_port = re.match(r"ws://([^/]+)/", url).group(1)
        self.ws = WebSocket(url)
        self.next_id = 0

    def call(self, ws, method, **params):
        self.next_id += 1
        ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            msg = json.loads(ws.recv())
            if msg.get("id") == self.next_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})

    def page(self, url):
        target = self.call(self.ws, "Target.createTarget", url=url)["targetId"]
        return Page(self, WebSocket(f"ws://{self.host_port}/devtools/page/{target}"))

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


class Page:
    def __init__(self, browser, ws):
        self.browser, self.ws = browser, ws

    def call(self, method, **params):
        return self.browser.call(self.ws, method, **params)

    def eval(self, expr, timeout=10):
        r = self.call("Runtime.evaluate", expression=expr, returnByValue=True, awaitPromise=True, timeout=timeout * 1000)
        if "exceptionDetails" in r:
            raise RuntimeError(f"in the page: {r['exceptionDetails'].get('text')} {r['result'].get('description', '')}")
        return r["result"].get("value")

    def wait(self, expr, timeout=10.0):
        """Poll expr (in the page, every 5 ms) until it is truthy; its value, or None on timeout."""
        js = (f"new Promise((ok) => {{ const t0 = Date.now(); (function poll() {{ let v = null; try {{ v = ({expr}); }}"
              f" catch (e) {{}} if (v) ok(v); else if (Date.now() - t0 > {int(timeout * 1000)}) ok(null);"
              f" else setTimeout(poll, 5); }})(); }})")
        deadline = time.time() + timeout
        while True:  # a page still navigating (about:blank, then the URL) drops the evaluation: again
            try:
                return self.eval(js, timeout + 5)
            except RuntimeError as e:
                if "context" not in str(e) or time.time() > deadline:
                    raise
                time.sleep(0.05)
