#!/usr/bin/env python3
"""The complaint-SLA scenario the timer tests share: customers cust-1..cust-N each
open a high-severity complaint k-<i> at 2026-03-01T08:00Z (an 8 h SLA), so level 1
is due at 16:00 and level 2 at 00:00 the next day.

  escalations.py input N               the N complaints, CloudEvents JSON lines
  escalations.py clocks PREFIX TIME [K]
                                       visits of clock-1..clock-K at TIME (K = 16
                                       land on all of 4 partitions)
  escalations.py check ESC N [--owners IN]
      ESC holds the complaint topic as `touchflow consume` prints it: every customer
      escalated exactly once per level, at its due time, unique ids, nobody else.
      --owners IN (the input topic, consumed): the level-1 escalations of one input
      partition come from one member (the event source), both /touchflow/a and
      /touchflow/b fired some, and every level 2 came from /touchflow/b.
  escalations.py spread ESC MS         the escalations were produced over at least
                                       MS milliseconds (Kafka timestamps)
"""
import json
import sys

T0 = "2026-03-01T08:00:00Z"
DUE = {1: "2026-03-01T16:00:00.000Z", 2: "2026-03-02T00:00:00.000Z"}
RULE = {1: "sla_deadline", 2: "sla_twice_deadline"}


def touchpoint(id_, subject, kind, time, data):
    return json.dumps({"specversion": "1.0", "id": id_, "source": "/crm/test", "type": "touchpoint." + kind,
                       "subject": subject, "time": time, "data": data})


def records(path):
    for line in open(path):
        if line.strip():
            yield json.loads(line)


def check(esc_path, n, in_path=None):
    got = {}
    for r in records(esc_path):
        ev = json.loads(r["value"])
        d = ev["data"]
        got.setdefault(ev["subject"], []).append(
            {"level": d["level"], "rule": d["rule"], "complaint_id": d["complaint_id"], "time": ev["time"],
             "source": ev["source"], "id": ev["id"]})
    customers = ["cust-%d" % i for i in range(1, n + 1)]
    bad = []
    for i, c in enumerate(customers, 1):
        seq = [(e["level"], e["rule"], e["complaint_id"], e["time"]) for e in got.get(c, [])]
        want = [(lvl, RULE[lvl], "k-%d" % i, DUE[lvl]) for lvl in (1, 2)]
        if seq != want:
            bad.append("%s: %s" % (c, seq))
    ids = [e["id"] for seq in got.values() for e in seq]
    if len(ids) != 2 * n or len(set(ids)) != len(ids):
        bad.append("%d escalations, %d distinct ids, %d expected" % (len(ids), len(set(ids)), 2 * n))
    strangers = sorted(set(got) - set(customers))
    if strangers:
        bad.append("escalations for unknown customers: %s" % strangers[:5])
    if in_path and not bad:
        bad += check_owners(got, customers, in_path)
    for b in bad[:8]:
        print("  " + b)
    return 1 if bad else 0


def check_owners(got, customers, in_path):
    part = {r["key"]: r["partition"] for r in records(in_path)}
    clocks = {part.get("clock-%d" % i) for i in range(1, 17)}
    if clocks != {0, 1, 2, 3}:
        return ["the clock customers miss a partition: %s" % sorted(clocks, key=str)]
    bad = []
    level1_by = {}  # input partition -> the sources of its level-1 escalations
    for c in customers:
        first, second = got[c]
        level1_by.setdefault(part[c], set()).add(first["source"])
        if second["source"] != "/touchflow/b":
            bad.append("%s: level 2 fired by %s after A was gone" % (c, second["source"]))
    for p, sources in sorted(level1_by.items()):
        if len(sources) != 1:
            bad.append("partition %d escalated by %s: more than its owner" % (p, sorted(sources)))
    owners = set().union(*level1_by.values())
    if owners != {"/touchflow/a", "/touchflow/b"}:
        bad.append("level 1 fired by %s, not by both members" % sorted(owners))
    return bad


def spread(esc_path, min_ms):
    ts = [r["timestamp"] for r in records(esc_path)]
    width = max(ts) - min(ts) if ts else 0
    print("  escalations produced over %d ms" % width)
    return 0 if width >= min_ms else 1


def main(argv):
    cmd = argv[1] if len(argv) > 1 else ""
    if cmd == "input":
        for i in range(1, int(argv[2]) + 1):
            print(touchpoint("c-%d" % i, "cust-%d" % i, "complaint", T0,
                             {"complaint_id": "k-%d" % i, "category": "service", "severity": "high"}))
        return 0
    if cmd == "clocks":
        for i in range(1, int(argv[4]) + 1 if len(argv) > 4 else 17):
            print(touchpoint("%s-%d" % (argv[2], i), "clock-%d" % i, "web_visit", argv[3], {}))
        return 0
    if cmd == "check":
        in_path = argv[argv.index("--owners") + 1] if "--owners" in argv else None
        return check(argv[2], int(argv[3]), in_path)
    if cmd == "spread":
        return spread(argv[2], int(argv[3]))
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
