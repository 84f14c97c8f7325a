"""check_chrome.py: checks a Chrome trace-event file written by chalk (prof:export_chrome).

usage: /usr/bin/python3 check_chrome.py TRACE.json [OP ...]

Exits 1 with a message unless: the file is JSON with a traceEvents list; every event has name,
ph, ts, pid, tid (and cat, dur, args for complete events); timestamps are monotonic; there are
complete ("X") events for each OP named, counter ("C") events for memory with one value per
category, and metadata naming the processes.
"""
import json
import sys

CATEGORIES = {"activation", "parameter", "gradient", "optimizer state", "temporary", "input", "kv_cache", "comm_buffer"}


def fail(msg):
    print("check_chrome: " + msg)
    sys.exit(1)


def main():
    path, ops = sys.argv[1], sys.argv[2:]
    with open(path) as f:
        doc = json.load(f)
    events = doc.get("traceEvents")
    if not isinstance(events, list) or not events:
        fail("no traceEvents list")
    last = -1.0
    names_x = set()
    counters = 0
    meta = 0
    for i, e in enumerate(events):
        for k in ("name", "ph", "ts", "pid", "tid"):
            if k not in e:
                fail("event %d lacks %s: %r" % (i, k, e))
        if e["ph"] == "M":
            meta += 1
            continue
        if e["ts"] < last:
            fail("timestamps go back at event %d (%f < %f)" % (i, e["ts"], last))
        last = e["ts"]
        if e["ph"] == "X":
            for k in ("cat", "dur", "args"):
                if k not in e:
                    fail("complete event %d lacks %s" % (i, k))
            if e["dur"] < 0:
                fail("negative duration at event %d" % i)
            names_x.add(e["name"])
        elif e["ph"] == "C":
            counters += 1
            if set(e["args"]) != CATEGORIES:
                fail("counter event %d has categories %r" % (i, sorted(e["args"])))
        elif e["ph"] not in ("i", "I"):
            fail("unexpected phase %r at event %d" % (e["ph"], i))
    if meta == 0:
        fail("no metadata events naming processes and threads")
    if counters == 0:
        fail("no memory counter events")
    for op in ops:
        if op not in names_x:
            fail("no complete event for op %s (have %s)" % (op, sorted(names_x)))
    print("check_chrome: ok, %d events (%d ops kinds, %d counters)" % (len(events), len(names_x), counters))


main()
