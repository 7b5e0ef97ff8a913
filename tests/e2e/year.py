#!/usr/bin/env python3
"""A year of touchpoints from many customer archetypes, for tests/e2e/test_determinism.sh.

    year.py input                       the touchpoints (CloudEvents JSON lines) in
                                        arrival order: late events arrive after later ones
    year.py slices N DIR                the same input cut into N files by arrival month
                                        (a live-paced feed), DIR/slice-00.jsonl ...
    year.py compare NAME=OUT.jsonl ...  compares the derived events of several runs
                                        (`touchflow consume` output of the output topics):
                                        the same ids with the same content, in the same
                                        order per customer and family (a run named crash*
                                        may differ in order: re-sends); prints the figures
    year.py sane OUT.jsonl              what any run must show: every family fires, no
                                        customer who kept buying is declined or churned,
                                        and every silent buyer is warned before it churns

The archetypes: steady buyers on their own rhythm (never declined), buyers who go
silent (declined, warned, churned), win-backs, seasonal buyers, one-off buyers
(temporary tier), big spenders (key and potential tiers), complainers whose SLAs are
met or missed, surveys and NPS, profiles with birthdays and dates, referral pairs on
one partition, exits by contract end, engagement touchpoints, duplicates, and late
events (arriving hours or days after their time). Each partition ends with a clock
touchpoint on 2025-12-31, so every timer of the year is passed. Seeded: the same
input every time.
"""
import json
import random
import sys
from collections import Counter, defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from archetypes import DAY, HOUR, PARTITIONS, in_time, ms, partition_of  # noqa: E402

START = ms("2025-01-01 00:00")
END = ms("2025-12-31 12:00")
SOURCES = {
    "web_visit": "/web/shop-cn", "purchase": "/shop/orders", "refund": "/shop/orders",
    "complaint": "/crm/complaints", "complaint_update": "/crm/complaints", "survey": "/crm/surveys",
    "referral": "/crm/referrals", "profile": "/crm/profile", "contract_end": "/crm/contracts",
    "call": "/cc/calls", "email": "/mail/campaigns", "store_visit": "/stores/pos",
}


class Feed:
    def __init__(self, seed=20251231):
        self.rng = random.Random(seed)
        self.rows = []  # (arrival, id, event)
        self.count = defaultdict(int)
        self.steady = []  # customers who buy at least every 20 days to the end
        self.credit_want = []  # referred customers whose referrer must be credited

    def ev(self, cid, t, kind, data=None, late_h=0):
        self.count[cid] += 1
        e = {"specversion": "1.0", "id": "%s.%d" % (cid, self.count[cid]), "source": SOURCES[kind],
             "type": "touchpoint." + kind, "subject": cid, "time": in_time(t)}
        if data is not None:
            e["data"] = data
        self.rows.append((t + late_h * HOUR, e["id"], e))
        return e

    def late(self):
        """Now and then an event arrives hours or days after its time."""
        return self.rng.choice([1, 6, 30, 70]) if self.rng.random() < 0.06 else 0

    def buy(self, cid, t, amount=None, channel="web"):
        amount = amount or self.rng.randrange(3000, 30000, 10)
        order = "o-%s-%d" % (cid, self.count[cid] + 1)
        self.ev(cid, t, "purchase", {"order_id": order, "amount": amount, "currency": "CNY",
                                     "margin": amount * 3 // 10, "channel": channel}, self.late())

    def visit(self, cid, t):
        self.ev(cid, t, "web_visit", {"channel": "app", "page": "/tea", "duration_s": 40}, self.late())

    def engage(self, cid, t0, t1, n):
        for _ in range(n):
            t = self.rng.randrange(t0, t1)
            kind = self.rng.choice(["web_visit", "email", "call", "store_visit"])
            data = {"web_visit": {"channel": "web"}, "email": {"action": "open"},
                    "call": {"direction": "inbound", "outcome": "answered"}, "store_visit": {"store_id": "sh-1"}}[kind]
            self.ev(cid, t, kind, data, self.late())

    def rhythm(self, cid, start, stop, every, jitter=2, **kw):
        t = start
        while t < stop:
            self.buy(cid, t, **kw)
            t += (every + self.rng.randint(-jitter, jitter)) * DAY + self.rng.randrange(0, 8) * HOUR

    def day(self, lo, hi):
        return START + self.rng.randint(lo, hi) * DAY + self.rng.randrange(1, 22) * HOUR


def build():
    f = Feed()
    r = f.rng
    for i in range(30):  # steady, each on its own rhythm, all year
        c = "steady-%02d" % i
        f.visit(c, f.day(0, 20))
        # One basket size each: their spend never declines.
        f.rhythm(c, f.day(1, 40), END - 10 * DAY, r.choice([7, 10, 12, 14]), amount=r.randrange(3000, 30000, 10))
        f.engage(c, START, END, 4)
        f.steady.append(c)
    for i in range(20):  # silent: weekly or fortnightly, then nothing
        c = "silent-%02d" % i
        f.rhythm(c, f.day(0, 30), f.day(60, 170), r.choice([7, 14]))
    for i in range(8):  # win-back: churned by silence, then back
        c = "winback-%02d" % i
        f.rhythm(c, f.day(0, 10), f.day(30, 60), 10)
        f.buy(c, f.day(300, 340), 20000)
    for i in range(8):  # seasonal bursts
        c = "seasonal-%02d" % i
        for lo in (30, 200):
            f.rhythm(c, f.day(lo, lo + 10), f.day(lo + 40, lo + 50), 6, jitter=1)
    for i in range(10):  # one purchase only
        c = "oneoff-%02d" % i
        f.visit(c, f.day(0, 60))
        f.buy(c, f.day(61, 120))
    for i in range(6):  # big spenders: the top of the rankings
        c = "big-%02d" % i
        f.rhythm(c, f.day(5, 90), END - 5 * DAY, r.choice([15, 25]), amount=r.randrange(200000, 900000, 1000))
    for i in range(15):  # complaints: SLAs met, missed, never answered, reopened
        c = "complainer-%02d" % i
        f.rhythm(c, f.day(0, 20), f.day(150, 300), 12)
        for k in range(r.randint(1, 3)):
            t = f.day(20, 330)
            cid = "cp-%s-%d" % (c, k)
            sev = r.choice(["low", "medium", "high", "critical"])
            f.ev(c, t, "complaint", {"complaint_id": cid, "category": r.choice(["quality", "shipping", "service"]),
                                     "severity": sev})
            answer = r.choice(["soon", "late", "never", "soon"])
            if answer != "never":
                ack = t + (r.randint(10, 60) * 60000 if answer == "soon" else r.randint(5, 50) * HOUR)
                f.ev(c, ack, "complaint_update", {"complaint_id": cid, "status": "acknowledged"}, f.late())
                f.ev(c, ack + 2 * DAY, "complaint_update", {"complaint_id": cid, "status": "resolved"})
                if r.random() < 0.2:
                    f.ev(c, ack + 5 * DAY, "complaint_update", {"complaint_id": cid, "status": "reopened"})
    for i in range(10):  # surveys: satisfied or not, promoters and detractors
        c = "surveyed-%02d" % i
        f.rhythm(c, f.day(0, 30), f.day(200, 330), 15)
        for _ in range(3):
            f.ev(c, f.day(40, 330), "survey", {"expectation": r.randint(6, 10), "perception": r.randint(2, 10),
                                               "nps": r.randint(0, 10)})
    for i in range(10):  # profiles: birthdays and dates; half never buy
        c = "profile-%02d" % i
        f.visit(c, f.day(0, 40))
        f.ev(c, f.day(41, 60), "profile", {"birthday": "1988-%02d-%02d" % (r.randint(3, 12), r.randint(1, 28)),
                                           "anniversary": "2015-%02d-%02d" % (r.randint(4, 12), r.randint(1, 28))})
        if i % 2:
            f.rhythm(c, f.day(61, 90), f.day(150, 250), 20)
    for i in range(6):  # referral pairs on one partition: credited when the referral came first
        a = "referrer-%02d" % i
        part = partition_of(a)
        k = 0
        while partition_of("referred-%02d-%d" % (i, k)) != part:
            k += 1
        b = "referred-%02d-%d" % (i, k)
        t = f.day(10, 200)
        f.rhythm(a, t - 5 * DAY, t + 60 * DAY, 20)
        if i == 5:  # the referral comes after the first purchase: no credit
            f.buy(b, t + 1 * DAY)
            f.ev(a, t + 2 * DAY, "referral", {"referred_id": b})
        else:
            f.ev(a, t, "referral", {"referred_id": b})
            f.credit_want.append(b)
            # Two of them were seen before they were referred: their records then
            # come first in a batch that holds the referral.
            f.visit(b, t - HOUR if i < 2 else t + HOUR)
            f.buy(b, t + r.choice([2 * HOUR, 1 * DAY, 9 * DAY]))
            f.buy(b, t + 30 * DAY)
    for i in range(6):  # exits
        c = "exit-%02d" % i
        f.rhythm(c, f.day(0, 20), f.day(100, 200), 9)
        f.ev(c, f.day(210, 250), "contract_end", {"reason": "moved"})
    for i in range(4):  # refunds
        c = "refund-%02d" % i
        f.rhythm(c, f.day(0, 20), f.day(200, 300), 11)
        f.ev(c, f.day(100, 150), "refund", {"order_id": "o-%s-1" % c, "amount": 2000, "currency": "CNY"})
    # duplicates: the same event again (same source and id) a little later
    for _, _, e in f.rng.sample(list(f.rows), 8):
        t = ms(e["time"][:10] + " 00:00") + DAY
        f.rows.append((t, e["id"], dict(e)))
    for p in range(PARTITIONS):  # the clocks
        k = 0
        while partition_of("clock-%d-%d" % (p, k)) != p:
            k += 1
        f.visit("clock-%d-%d" % (p, k), END)
    f.rows.sort(key=lambda row: (row[0], row[1]))
    return f


def load(path):
    out = []
    for line in open(path):
        if line.strip():
            rec = json.loads(line)
            out.append((rec["key"], rec["value"]))
    return out


def derived(path):
    """Per (customer, family): ids in delivery order, duplicates dropped; id -> event."""
    order, body, dups = defaultdict(list), {}, 0
    for key, value in load(path):
        ev = json.loads(value)
        if ev["id"] in body:
            dups += 1
            continue
        body[ev["id"]] = ev
        order[(key, ev["type"])].append(ev["id"])
    return order, body, dups


def compare(runs, pending=None):
    """pending: run name -> ids still in that run's outboxes in Redis (committed,
    sent when the next owner visits the customer)."""
    pending = pending or {}
    names = [n for n, _ in runs]
    got = [derived(p) for _, p in runs]
    base_order, base_body, _ = got[0]
    by_type = Counter(e["type"] for e in base_body.values())
    print("  %d derived events of %d customers in run %s: %s" % (
        len(base_body), len({k for k, _ in base_order}), names[0],
        ", ".join("%s %d" % (t.replace("touchflow.", ""), n) for t, n in sorted(by_type.items()))))
    bad = 0
    for name, (order, body, dups) in zip(names[1:], got[1:]):
        only_base = sorted(set(base_body) - set(body))
        only_run = sorted(set(body) - set(base_body))
        differ = sorted(i for i in set(body) & set(base_body) if body[i] != base_body[i])
        reordered = sorted(k for k in set(order) | set(base_order) if order.get(k) != base_order.get(k))
        print("  run %s against %s: %d events, %d re-sent duplicates dropped, %d only in %s, %d only in %s, "
              "%d with other content, %d customer/type sequences in another order" % (
                  name, names[0], len(body), dups, len(only_base), names[0], len(only_run), name,
                  len(differ), len(reordered)))
        for i in (only_base[:5] + only_run[:5] + differ[:5]):
            e = base_body.get(i) or body.get(i)
            print("    %s %s %s %s" % (i, e["subject"], e["type"], e["time"]))
        # A member killed between a commit and its delivery leaves the events in the
        # customer's outbox; the next owner sends them when it next visits the
        # customer, which a customer with nothing more to do may never need within
        # the run. Committed, not lost: counted apart.
        waiting = [i for i in only_base if i in pending.get(name, set())]
        if waiting:
            print("  run %s: %d of those wait in their customers' outboxes for a next visit" % (name, len(waiting)))
        bad += len(only_base) - len(waiting) + len(only_run) + len(differ)
        # After a crash, derived events committed and never delivered are sent by the
        # next owner when it visits the customer, after what it derived meanwhile:
        # the ids and contents match, the order may not (subscribers order by time).
        if not name.startswith("crash"):
            bad += len(reordered)
    return 0 if bad == 0 and base_body else 1


def sane(path, feed):
    order, body, _ = derived(path)
    events = list(body.values())
    types = Counter(e["type"] for e in events)
    want = ["touchflow.lifecycle.stage_changed", "touchflow.churn.warning", "touchflow.care.reminder",
            "touchflow.complaint.escalated", "touchflow.tier.changed", "touchflow.loyalty.level_changed",
            "touchflow.referral.credited", "touchflow.winback.opportunity", "touchflow.winback.succeeded"]
    missing = [t for t in want if types[t] == 0]
    tiers = Counter(e["data"].get("to") for e in events if e["type"] == "touchflow.tier.changed")
    false_declines = [(e["subject"], e["time"], e["data"].get("to"), e["data"].get("rule")) for e in events
                      if e["type"] == "touchflow.lifecycle.stage_changed" and e["subject"] in feed.steady and
                      e["data"].get("to") in ("decline", "churned")]
    silent = {e["subject"] for e in events if e["type"] == "touchflow.lifecycle.stage_changed" and
              e["subject"].startswith("silent-") and e["data"].get("to") == "churned"}
    credited = {e["data"]["referred_id"] for e in events if e["type"] == "touchflow.referral.credited"}
    # DOMAIN.md: a customer who simply stops buying is warned (for inactivity) before
    # the decline turns into churn, and the warning still stands when it does.
    unwarned = []
    for c in sorted(silent):
        mine = sorted((e["time"], e["type"], e["data"]) for e in events if e["subject"] == c)
        churn_at = min(t for t, ty, d in mine if ty == "touchflow.lifecycle.stage_changed" and d.get("to") == "churned")
        churn_evs = [(t, ty, d) for t, ty, d in mine if t < churn_at and ty.startswith("touchflow.churn.")]
        last = churn_evs[-1] if churn_evs else None
        if not last or last[1] != "touchflow.churn.warning" or "inactivity" not in last[2]["reasons"]:
            unwarned.append((c, churn_at, last and (last[0], last[1])))
    print("  tiers entered: %s; silent buyers churned: %d of 20, warned before: %d; referrals credited: %d; "
          "declines of steady buyers: %d" % (dict(tiers), len(silent), len(silent) - len(unwarned), len(credited),
                                             len(false_declines)))
    ok = True
    if missing:
        print("  no event of type %s" % ", ".join(missing))
        ok = False
    if false_declines:
        print("  steady buyers declined or churned: %s" % false_declines[:5])
        ok = False
    if len(silent) != 20 or not {"key", "potential", "temporary"} <= set(tiers):
        ok = False
    if unwarned:
        print("  silent buyers churned without a standing warning: %s" % unwarned[:5])
        ok = False
    if credited != set(feed.credit_want):
        print("  referrals credited: %s, want %s" % (sorted(credited), sorted(feed.credit_want)))
        ok = False
    return 0 if ok else 1


def main(argv):
    if len(argv) < 2:
        print(__doc__)
        return 2
    feed = build()
    if argv[1] == "input":
        for _, _, e in feed.rows:
            print(json.dumps(e, separators=(",", ":")))
        return 0
    if argv[1] == "slices":
        n, out = int(argv[2]), Path(argv[3])
        span = (END + DAY - START) // n
        files = [open(out / ("slice-%02d.jsonl" % i), "w") for i in range(n)]
        for arrive, _, e in feed.rows:
            i = min(max((arrive - START) // span, 0), n - 1)
            files[i].write(json.dumps(e, separators=(",", ":")) + "\n")
        for fh in files:
            fh.close()
        return 0
    if argv[1] == "compare":
        runs = [a.split("=", 1) for a in argv[2:] if not a.startswith("pending:")]
        pending = {}
        for a in argv[2:]:
            if a.startswith("pending:"):
                name, path = a[len("pending:"):].split("=", 1)
                pending[name] = {line.strip() for line in open(path) if line.strip()}
        return compare(runs, pending)
    if argv[1] == "sane":
        return sane(argv[2], feed)
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
