# test_browser.py: the live page and a saved transcript in headless chromium, driven over DevTools:
# the page loads and connects, a picture drawn at the REPL shows within a second (the latency from
# picture written to picture shown is measured and printed), the SVG zooms and pans with real
# wheel and mouse input, lesson steps follow, and a lesson's transcript shows every step's pictures.
# Usage: python3 test_browser.py build/chalk
import base64
import os
import re
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from webtest import Browser, Chalk, Report, find_chromium  # noqa: E402

LATENCY_LIMIT_MS = 1000


def main():
    exe = os.path.abspath(sys.argv[1])
    r = Report("web-browser")
    chromium = find_chromium()
    if chromium is None:
        r.skip("chromium is not installed (make deps installs it: apt-get install chromium)")
        r.finish()
    tmp = tempfile.mkdtemp(prefix="chalk-browser-")
    browser = Browser(chromium)
    try:
        live_page(r, browser, exe, tmp)
        transcript(r, browser, exe, tmp)
    finally:
        browser.close()
    r.finish()


def live_page(r, browser, exe, tmp):
    chalk = Chalk(exe, ["--serve", "0", "--out", os.path.join(tmp, "out")], tmp)
    try:
        url = chalk.url()
        if not r.check(url is not None and chalk.wait_for(r"^> ", 30), "chalk --serve 0 starts", chalk.text()[-300:]):
            return
        page = browser.page(url)
        r.check(page.wait("window.chalkPage && chalkPage.connected", 10), "the page loads and its event stream opens")

        chalk.type('x = chalk.tensor(3, {requires_grad = true, name = "x"}); y = (x * x + x):sum()')
        latencies = []
        for k in range(3):  # a few pictures: the first, and others while the page holds earlier ones
            typed = time.time() * 1000
            chalk.type(f'viz.graph(y, {{format = "svg", file = "live{k}.svg"}})')
            shown = page.wait(f"chalkPage.shown.length > {k} && chalkPage.shown[{k}]", 5)
            if not r.check(shown is not None, f"picture {k + 1} drawn at the REPL shows on the page"):
                return
            latency = shown["shown"] - shown["written"]
            latencies.append(latency)
            print(f"     picture {shown['name']}: written -> shown {latency:.1f} ms "
                  f"(typed -> shown {shown['shown'] - typed:.1f} ms, Graphviz layout included)")
        r.check(max(latencies) < LATENCY_LIMIT_MS, f"each within a second (worst {max(latencies):.1f} ms)")
        info = page.eval("(() => { const i = document.querySelector('#view img');"
                         " return {src: i.src, w: i.naturalWidth, mime: chalkPage.pictures[2].mime,"
                         " thumbs: document.querySelectorAll('#strip img').length}; })()")
        r.check(info["w"] > 0 and info["mime"] == "image/svg+xml" and "/pic/" in info["src"],
                "the picture shown is the SVG, loaded", info)
        r.check(info["thumbs"] == 3, "every picture has a thumbnail in the strip", info["thumbs"])

        # zoom with the wheel and pan with the mouse, as a student would (real input events)
        box = page.eval("(() => { const b = document.getElementById('view').getBoundingClientRect();"
                        " return {x: b.left + b.width / 2, y: b.top + b.height / 2}; })()")
        before = page.eval("({...document.getElementById('view').chalkZoom})")
        page.call("Input.dispatchMouseEvent", type="mouseWheel", x=box["x"], y=box["y"], deltaX=0, deltaY=-400)
        zoomed = page.wait(f"document.getElementById('view').chalkZoom.s > {before['s']} * 1.5 &&"
                           " document.querySelector('#view img').style.transform", 3)
        r.check(zoomed is not None and "scale(" in zoomed, "the wheel zooms the SVG in", zoomed)
        mid = page.eval("({...document.getElementById('view').chalkZoom})")
        page.call("Input.dispatchMouseEvent", type="mousePressed", x=box["x"], y=box["y"], button="left", clickCount=1)
        page.call("Input.dispatchMouseEvent", type="mouseMoved", x=box["x"] + 80, y=box["y"] + 40, button="left")
        page.call("Input.dispatchMouseEvent", type="mouseReleased", x=box["x"] + 80, y=box["y"] + 40, button="left",
                  clickCount=1)
        after = page.eval("({...document.getElementById('view').chalkZoom})")
        r.check(abs(after["x"] - mid["x"] - 80) < 2 and abs(after["y"] - mid["y"] - 40) < 2 and after["s"] == mid["s"],
                "dragging pans it by as much as the mouse moved", {"before": mid, "after": after})
        if os.environ.get("CHALK_WEB_SCREENSHOT"):  # a look at the page, for whoever changes it
            shot = page.call("Page.captureScreenshot", format="png")["data"]
            with open(os.environ["CHALK_WEB_SCREENSHOT"], "wb") as f:
                f.write(base64.b64decode(shot))

        # a lesson followed live: step title, narration and code
        chalk.type(":lesson example")
        step = page.wait("document.getElementById('step-title').textContent.startsWith('1/') &&"
                         " document.getElementById('step-title').textContent", 5)
        r.check(step is not None, "a lesson's step shows with its title", step)
        chalk.type(":next")
        code = page.wait("document.getElementById('step-title').textContent.startsWith('2/') &&"
                         " !document.getElementById('code').hidden && document.getElementById('code').textContent", 5)
        r.check(bool(code), ":next shows step 2 and its code", code)
        log = page.eval("document.getElementById('log').textContent")
        r.check("viz.graph(y" in log and ":lesson example" in log, "the log shows the inputs and commands")
        chalk.type(":quit")
        r.check(chalk.exited(10), ":quit ends chalk")
        ended = page.wait("!chalkPage.connected", 5)
        r.check(ended, "and the page says it lost the session")
    finally:
        chalk.close()


def transcript(r, browser, exe, tmp):
    html = os.path.join(tmp, "autodiff.html")
    run = subprocess.run([exe, "--lesson", "02_autodiff", "--auto", "--transcript", html, "--out",
                          os.path.join(tmp, "out2")], cwd=tmp, env=dict(os.environ, CHALK_LESSONS=os.path.abspath("lessons")), capture_output=True, text=True, timeout=120)
    if not r.check(run.returncode == 0 and os.path.exists(html), "chalk --lesson 02_autodiff --auto --transcript FILE",
                   run.stderr[-400:]):
        return
    expected, step = {}, 0  # pictures per step, as chalk announced them
    for line in run.stdout.splitlines():
        m = re.match(r"\[(\d+)/\d+\]", line)
        if m:
            step = int(m.group(1))
        elif line.startswith("picture: "):
            expected[step] = expected.get(step, 0) + 1
    page = browser.page("file://" + html)
    ready = page.wait("location.protocol === 'file:' && document.readyState === 'complete' &&"
                      " [...document.querySelectorAll('figure.pic img')].every((i) => i.complete)", 10)
    r.check(ready, "the transcript opens in the browser without chalk")
    shown = page.eval("""(() => {
        const per = {}; let step = 0, broken = 0, steps = 0;
        for (const el of document.getElementById('log').children) {
          const m = el.matches('section.step') && el.querySelector('h2').textContent.match(/step (\\d+)\\//);
          if (m) { step = +m[1]; steps++; }
          if (el.matches('figure.pic')) {
            const img = el.querySelector('img');
            if (img && img.naturalWidth > 0) per[step] = (per[step] || 0) + 1; else broken++;
          }
        }
        return {per, broken, steps};
      })()""")
    per = {int(k): v for k, v in shown["per"].items()}
    r.check(sum(expected.values()) > 0 and per == expected and shown["broken"] == 0,
            f"every step's pictures show ({sum(expected.values())} pictures over {len(expected)} steps)",
            {"expected": expected, "shown": shown})
    r.check(shown["steps"] == 9, "every step is there (9 of 02_autodiff)", shown["steps"])
    zoom = page.eval("(() => { const v = document.querySelector('figure.pic .view'); const s = v.chalkZoom.s;"
                     " v.chalkZoom.zoom(2); return [s, v.chalkZoom.s]; })()")
    r.check(zoom[1] > zoom[0] * 1.9, "its pictures zoom too", zoom)


if __name__ == "__main__":
    main()
