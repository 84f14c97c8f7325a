// page.js: the live page (server-sent events from chalk --serve) and the zoom of saved transcripts.
// No framework and nothing fetched but this session's own events and pictures. The page only
// shows: it has no way to send code to chalk, and chalk's server has no route that would run any.
"use strict";

// ---- zoom and pan of one picture in a .view box ---------------------------------------------
// Wheel zooms around the pointer, dragging pans, double-click fits. view.chalkZoom exposes the
// state (s: scale, x, y: offset in pixels) and the same actions for the toolbar and the tests.
function zoomable(view) {
  const z = { s: 1, x: 0, y: 0 };
  view.classList.add("zoomable");
  const img = () => view.querySelector("img");
  const apply = () => {
    const i = img();
    if (i) i.style.transform = `translate(${z.x}px, ${z.y}px) scale(${z.s})`;
  };
  z.fit = () => {
    const i = img();
    if (!i || !i.naturalWidth) return;
    const w = view.clientWidth, h = view.clientHeight;
    z.s = Math.min(w / i.naturalWidth, h / i.naturalHeight, 4);
    z.x = (w - i.naturalWidth * z.s) / 2;
    z.y = (h - i.naturalHeight * z.s) / 2;
    apply();
  };
  z.zoom = (factor, cx, cy) => { // keep the point (cx, cy) of the box where it is
    if (cx === undefined) { cx = view.clientWidth / 2; cy = view.clientHeight / 2; }
    const s = Math.min(Math.max(z.s * factor, 0.02), 64);
    z.x = cx - (cx - z.x) * (s / z.s);
    z.y = cy - (cy - z.y) * (s / z.s);
    z.s = s;
    apply();
  };
  view.addEventListener("wheel", (e) => {
    e.preventDefault();
    const r = view.getBoundingClientRect();
    z.zoom(Math.exp(-e.deltaY * 0.0015), e.clientX - r.left, e.clientY - r.top);
  }, { passive: false });
  let drag = null;
  view.addEventListener("pointerdown", (e) => {
    drag = { x: e.clientX - z.x, y: e.clientY - z.y };
    view.classList.add("grabbing");
    if (view.setPointerCapture) view.setPointerCapture(e.pointerId);
  });
  view.addEventListener("pointermove", (e) => {
    if (!drag) return;
    z.x = e.clientX - drag.x;
    z.y = e.clientY - drag.y;
    apply();
  });
  const stop = () => { drag = null; view.classList.remove("grabbing"); };
  view.addEventListener("pointerup", stop);
  view.addEventListener("pointercancel", stop);
  view.addEventListener("dblclick", () => z.fit());
  const i = img();
  if (i) {
    if (i.complete) z.fit();
    else i.addEventListener("load", () => z.fit());
  }
  view.chalkZoom = z;
  return z;
}

// ---- a saved transcript: every picture zoomable, nothing else to do --------------------------
if (document.body.classList.contains("transcript")) {
  document.querySelectorAll(".view").forEach(zoomable);
} else {
  live();
}

// ---- the live page -------------------------------------------------------------------------------
function live() {
  const $ = (id) => document.getElementById(id);
  const view = $("view"), log = $("log"), strip = $("strip"), follow = $("follow");
  const LOG_MAX = 400; // entries kept on the page (the saved transcript keeps everything)
  const page = { connected: false, events: 0, pictures: [], shown: [], current: null };
  window.chalkPage = page; // read by the tests (tests/web/) and handy in the console
  const zoom = zoomable(view);
  $("zoom-in").onclick = () => zoom.zoom(1.25);
  $("zoom-out").onclick = () => zoom.zoom(0.8);
  $("zoom-fit").onclick = () => zoom.fit();

  function addLog(cls, text) {
    const atBottom = log.scrollTop + log.clientHeight >= log.scrollHeight - 8;
    const last = log.lastElementChild;
    if (last && last.className === cls && cls !== "in" && cls !== "in cmd") {
      last.textContent += text; // one block per run of output
    } else {
      const pre = document.createElement("pre");
      pre.className = cls;
      pre.textContent = text;
      log.appendChild(pre);
      while (log.childElementCount > LOG_MAX) log.removeChild(log.firstElementChild);
    }
    if (atBottom) log.scrollTop = log.scrollHeight;
  }

  function setStep(d) {
    if (d.i === 0) { // a lesson starts
      $("lesson").textContent = `${d.lesson}: ${d.title} (${d.n} steps)`;
      return;
    }
    $("lesson").textContent = `${d.lesson} · step ${d.i}/${d.n}`;
    $("step-title").textContent = `${d.i}/${d.n}  ${d.title || ""}`;
    $("narration").textContent = d.text || "";
    const code = $("code");
    code.textContent = d.code || "";
    code.hidden = !d.code;
    document.title = `chalk · ${d.lesson} ${d.i}/${d.n}`;
  }

  // The picture goes up when it has loaded and been laid out; shown[] keeps, for each, the time
  // it was written (the event's t, chalk's clock) and the time it was shown (this page's clock).
  function showPicture(d) {
    page.current = d.seq;
    $("pic-name").textContent = d.name;
    strip.querySelectorAll("img").forEach((t) => t.classList.toggle("current", t.dataset.seq == d.seq));
    if (d.mime === "application/pdf") {
      view.replaceChildren(Object.assign(document.createElement("p"), { className: "hint" }));
      const a = Object.assign(document.createElement("a"), { href: d.url, textContent: `${d.name} (PDF)` });
      view.firstChild.appendChild(a);
      return;
    }
    const img = new Image();
    img.alt = d.name;
    img.dataset.seq = d.seq;
    img.onload = () => {
      if (page.current !== d.seq) return;
      view.replaceChildren(img);
      zoom.fit();
      requestAnimationFrame(() => page.shown.push({ seq: d.seq, name: d.name, written: d.t, shown: Date.now() }));
    };
    img.onerror = () => { // an SVG the browser cannot draw: its PNG sibling, when chalk wrote one
      const png = d.name.replace(/\.svg$/i, ".png");
      if (png !== d.name && !img.dataset.fallback) {
        img.dataset.fallback = "1";
        img.src = "/out/" + encodeURIComponent(png);
      } else {
        view.replaceChildren(Object.assign(document.createElement("p"),
          { className: "hint err", textContent: `${d.name} cannot be shown here` }));
      }
    };
    img.src = d.url;
  }

  function addPicture(d) {
    page.pictures.push(d);
    const thumb = new Image();
    thumb.src = d.url;
    thumb.alt = thumb.title = d.name;
    thumb.dataset.seq = d.seq;
    thumb.onclick = () => { follow.checked = false; showPicture(d); };
    strip.appendChild(thumb);
    thumb.scrollIntoView({ inline: "end", block: "nearest" });
    if (follow.checked || page.current === null) showPicture(d);
  }

  const handlers = {
    input: (d) => addLog("in", d.text),
    command: (d) => addLog("in cmd", d.text),
    output: (d) => addLog("out", d.text),
    error: (d) => addLog("err", d.text),
    picture: addPicture,
    step: setStep,
  };
  const status = $("status");
  const source = new EventSource("/events");
  source.onopen = () => {
    page.connected = true;
    status.textContent = "live";
    status.className = "on";
  };
  source.onerror = () => { // EventSource reconnects by itself, resuming after the last event seen
    page.connected = false;
    status.textContent = source.readyState === EventSource.CLOSED ? "ended" : "reconnecting…";
    status.className = "off";
  };
  for (const kind of Object.keys(handlers)) {
    source.addEventListener(kind, (e) => {
      const session = e.lastEventId.split("-")[0];
      if (page.session && session !== page.session) return location.reload(); // chalk restarted: start afresh
      page.session = session;
      page.events++;
      handlers[kind](JSON.parse(e.data));
    });
  }
}
