# test_server.py: chalk --serve's HTTP server with a real client: the page, live events, pictures, files
# under the output folder only (path traversal, encoded too), malformed requests, 100 connections at
# once, :save, and :quit stopping the server. Usage: python3 test_server.py build/chalk
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from webtest import SSE, Chalk, Report, get, raw_request  # noqa: E402

SVG = ('<svg xmlns="http://www.w3.org/2000/svg" width="120" height="80" viewBox="0 0 120 80">'
       '<rect x="10" y="10" width="100" height="60" fill="#2a5db0"/></svg>')


def main():
    exe = os.path.abspath(sys.argv[1])
    r = Report("web-server")
    tmp = tempfile.mkdtemp(prefix="chalk-web-")
    out = os.path.join(tmp, "out")
    os.makedirs(os.path.join(out, "sub"))
    with open(os.path.join(tmp, "secret.txt"), "w") as f:
        f.write("TOP-SECRET\n")
    with open(os.path.join(out, "ok.txt"), "w") as f:
        f.write("inside the output folder\n")
    with open(os.path.join(out, "sub", "x.txt"), "w") as f:
        f.write("in a sub-folder\n")
    os.symlink(os.path.join(tmp, "secret.txt"), os.path.join(out, "link.txt"))

    chalk = Chalk(exe, ["--serve", "0", "--out", out], tmp)
    try:
        run(r, chalk, tmp, out)
    finally:
        chalk.close()
    other_forms(r, exe, tmp)
    r.finish()


def address(chalk):
    url = chalk.url()
    if url is None:
        return None, None
    host, port = url[len("http://"):-1].split(":")
    return host, int(port)


def other_forms(r, exe, tmp):
    """--serve before a script and before --lesson, and :serve typed at the REPL."""
    script = os.path.join(tmp, "lecture.lua")
    with open(script, "w") as f:
        f.write('print("from the script")\n')
    chalk = Chalk(exe, ["--serve", "0", script], tmp)
    try:
        host, port = address(chalk)
        up = chalk.wait_for("stays up until Enter", 10) is not None
        sse = SSE(host, port) if host else None
        r.check(up and sse and sse.wait_for("from the script", 5),
                "chalk --serve 0 FILE.lua: the script's output is on the page, which stays up after it")
        chalk.type("")
        r.check(chalk.exited(10), "and Enter ends it")
    finally:
        chalk.close()
    chalk = Chalk(exe, ["--serve", "0", "--lesson", "example"], tmp)
    try:
        host, port = address(chalk)
        sse = SSE(host, port) if host else None
        r.check(sse and sse.wait_for('"i":1,', 10) and "event: step" in sse.text(),
                "chalk --serve 0 --lesson NAME: the first step is on the page")
        chalk.type(":quit")
        chalk.exited(10)
    finally:
        chalk.close()
    chalk = Chalk(exe, [], tmp)
    try:
        chalk.wait_for(r"^> ", 30)
        chalk.type("print(6 * 7)")
        chalk.type(":serve 0")
        host, port = address(chalk)
        sse = SSE(host, port) if host else None
        r.check(sse and sse.wait_for('"text":"42\\n"', 10),
                ":serve 0 at the REPL starts the page, with what came before it")
        chalk.type(":quit")
        chalk.exited(10)
    finally:
        chalk.close()


def run(r, chalk, tmp, out):
    url = chalk.url()
    if not r.check(url is not None, "chalk --serve 0 prints the page's address", chalk.text()[-500:]):
        return
    host, port = url[len("http://"):-1].split(":")
    port = int(port)
    r.check(host == "127.0.0.1", "bound to 127.0.0.1 unless --host says otherwise", host)
    r.check(chalk.wait_for(r"^> ", 30) is not None, "the REPL prompt comes up beside the server")

    status, head, body = get(host, port, "/")
    r.check(status == 200 and b"/page.js" in body and "text/html" in head, "GET / is the page", f"{status} {head}")
    status, head, body = get(host, port, "/page.js")
    r.check(status == 200 and b"EventSource" in body and "javascript" in head, "GET /page.js is its script")
    status, _, body = get(host, port, "/page.css")
    r.check(status == 200 and len(body) > 100, "GET /page.css is its style sheet")

    # live events: what is typed and printed reaches an open stream
    sse = SSE(host, port)
    t0 = time.time()
    chalk.type('print("sse-probe-" .. 6 * 7)')
    got = sse.wait_for("sse-probe-42\\n", 5)
    r.check(got, "a line printed at the REPL reaches /events", sse.text()[-300:])
    if got:
        print(f"     (typed -> event received: {1000 * (time.time() - t0):.1f} ms)")
    first_id = sse.text().split("id: ", 1)[1].split("\n", 1)[0] if "id: " in sse.text() else ""
    session = first_id.rsplit("-", 1)[0]
    for last, expect in ((f"{session}-2", f"{session}-3"), ("other-2", f"{session}-1")):
        _, resumed = raw_request(host, port, f"GET /events HTTP/1.1\r\nHost: x\r\nLast-Event-ID: {last}\r\n\r\n"
                                 .encode(), timeout=0.5)
        ids = [line[4:] for line in resumed.decode("utf-8", "replace").split("\n") if line.startswith("id: ")]
        r.check(ids[:1] == [expect], f"Last-Event-ID {last} resumes at {expect}", ids[:3])
    kinds = [k for k, _ in sse.events()]
    r.check("input" in kinds and "output" in kinds, "inputs and outputs are both events", kinds)
    chalk.type('error("on purpose")')
    r.check(sse.wait_for("event: error", 5) and any("on purpose" in d["text"] for k, d in sse.events() if k == "error"),
            "an error is an error event")

    # a picture: the event names it, /pic/N gives the bytes as written
    svg_path = os.path.join(out, "drawn.svg")
    with open(svg_path, "w") as f:
        f.write(SVG)
    chalk.type(f'viz.show("{svg_path}")')
    r.check(sse.wait_for("event: picture", 5), "viz.show(path) sends a picture event")
    pics = [d for k, d in sse.events() if k == "picture"]
    if pics:
        status, head, body = get(host, port, pics[-1]["url"])
        r.check(status == 200 and body.decode() == SVG and "image/svg+xml" in head,
                "GET /pic/N is the picture's bytes", f"{status} {head}")
    status, _, _ = get(host, port, "/pic/99999")
    r.check(status == 404, "a picture that does not exist is 404", status)
    status, _, _ = get(host, port, "/pic/1")
    r.check(status == 404, "an event that is not a picture is 404", status)

    # files under the output folder, and nothing else
    status, _, body = get(host, port, "/out/ok.txt")
    r.check(status == 200 and body == b"inside the output folder\n", "a file in the output folder is served")
    status, _, body = get(host, port, "/out/sub/x.txt")
    r.check(status == 200 and body == b"in a sub-folder\n", "a file in a sub-folder of it too")
    traversal = ["/out/../secret.txt", "/out/%2e%2e/secret.txt", "/out/%2E%2E/secret.txt", "/out/.%2e/secret.txt",
                 "/out/%2e%2e%2fsecret.txt", "/out/..%2fsecret.txt", "/out/..%2Fsecret.txt", "/out/..%5csecret.txt",
                 "/out/%252e%252e/secret.txt", "/out/sub/../../secret.txt", "/out/sub/%2e%2e/%2e%2e/secret.txt",
                 "/out/link.txt", "/out//etc/passwd", "/out/%2fetc%2fpasswd", "/../../etc/passwd",
                 "/%2e%2e/%2e%2e/etc/passwd", "/out/%00/../secret.txt", "/out/ok.txt%00../../secret.txt",
                 "/pic/../../etc/passwd", "/out/" + "../" * 20 + "etc/passwd", "/out/..%c0%afsecret.txt",
                 "/out/%c0%ae%c0%ae/secret.txt", "/out/sub%2f..%2f..%2fsecret.txt", "/out/....//secret.txt"]
    leaked = []
    for path in traversal:
        status, _, body = get(host, port, path)
        if status not in (400, 403, 404) or b"TOP-SECRET" in body or b"root:" in body:
            leaked.append(f"{path} -> {status}")
    r.check(not leaked, f"path traversal refused ({len(traversal)} variants, encoded ../ among them)", leaked)

    # malformed and unexpected requests: answered or dropped, never fatal
    bad = [b"GARBAGE\r\n\r\n", b"GET\r\n\r\n", b"GET / HTTP/9.9\r\n\r\n", bytes(range(256)) * 64,
           b"GET / HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n", b"GET /" + b"a" * 200000 + b" HTTP/1.1\r\n\r\n",
           b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n", b"GET / HTTP/1.1\r\nHo",
           b"GET / HTTP/1.1\r\nHost: x\r\n" + b"X-Big: " + b"b" * 100000 + b"\r\n\r\n", b"\r\n\r\n\r\n",
           b"GET /events HTTP/1.1\r\nHost: x\r\nLast-Event-ID: -99999999999999999999\r\nConnection: close\r\n\r\n"]
    for data in bad:
        raw_request(host, port, data, timeout=1.0)
    status, _ = raw_request(host, port, b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                               b"Connection: close\r\n\r\nhello")
    r.check(status == 405, "POST is refused (405): the page is read-only", status)
    status, _ = raw_request(host, port, b"DELETE /out/ok.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    r.check(status == 405 and os.path.exists(os.path.join(out, "ok.txt")), "DELETE is refused and deletes nothing")
    status, _, _ = get(host, port, "/")
    r.check(status == 200, "the server still answers after malformed requests", status)

    # 100 connections at once: 100 open event streams, then 100 page loads, then one event to all
    streams = [SSE(host, port) for _ in range(100)]
    results = []

    def load():
        try:
            results.append(get(host, port, "/", timeout=10)[0])
        except OSError as e:
            results.append(str(e))

    threads = [threading.Thread(target=load) for _ in range(100)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    r.check(results.count(200) == 100, "100 page loads at once, beside 100 open event streams, all answered",
            [x for x in results if x != 200][:5])
    t0 = time.time()
    chalk.type('print("to-all-" .. 100)')
    reached = sum(1 for s in streams if s.wait_for("to-all-100", 10))
    r.check(reached == 100, "an event reaches all 100 streams", f"{reached} of 100")
    print(f"     (typed -> received by all 100 streams: {1000 * (time.time() - t0):.1f} ms)")
    for s in streams:
        s.close()
    sse.close()

    # :save FILE.html and FILE.lua
    html, lua = os.path.join(tmp, "session.html"), os.path.join(tmp, "session.lua")
    chalk.type(f":save {html}")
    chalk.type(f":save {lua}")
    r.check(chalk.wait_for(r"^saved .*session\.lua", 10) is not None, ":save answers 'saved FILE'")
    page = open(html).read() if os.path.exists(html) else ""
    r.check("sse-probe-42" in page and "on purpose" in page and "data:image/svg+xml;base64," in page,
            ":save FILE.html holds the outputs, the errors and the picture (embedded)")
    r.check("http://" not in page.replace("http://www.w3.org", ""), "and refers to nothing outside itself")
    script = open(lua).read() if os.path.exists(lua) else ""
    r.check('print("sse-probe-" .. 6 * 7)' in script and "-- :save" in script, ":save FILE.lua holds the inputs")
    replay = subprocess.run([os.path.abspath(sys.argv[1]), lua], cwd=tmp, capture_output=True, text=True, timeout=60)
    r.check(replay.returncode != 0 and "sse-probe-42" in replay.stdout,
            "the saved inputs replay with chalk FILE.lua (up to the error typed on purpose)", replay.stderr[-300:])

    # :quit stops the server with the REPL
    chalk.type(":quit")
    r.check(chalk.exited(10), ":quit ends chalk while the server runs")
    try:
        socket.create_connection((host, port), timeout=2).close()
        refused = False
    except OSError:
        refused = True
    r.check(refused, "and the port is closed after it")


if __name__ == "__main__":
    main()
