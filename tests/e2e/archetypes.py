#!/usr/bin/env python3
"""Year-long customer archetypes for tests/e2e/test_archetypes.sh.

    archetypes.py input                 the touchpoints, CloudEvents JSON lines (structured
                                        mode) in arrival order: what the test produces
    archetypes.py expected              the derived events each customer must get, as
                                        JSON lines, per customer and time
    archetypes.py ids                   the customer ids by role (JSON)
    archetypes.py partitions IN.jsonl   checks `touchflow consume` output of the input
                                        topic: every record on the partition computed here
    archetypes.py check OUT.jsonl [--ids FILE]
                                        compares `touchflow consume` output of the output
                                        output topics with the expectation; --ids writes
                                        the ids of the deterministic events (for a replay)
    archetypes.py top-is-key OUT.jsonl  the top buyer by value (bg-00) is ranked key

The journeys run through 2025 (the seasonal buyer starts in September 2024): event
times must not lie more than limits.max_future_skew_s (at most a year) ahead of the
wall clock, so a whole year of history has to be in the past. The festival calendar
is read from config/touchflow.json, the thresholds are the defaults of config/README.md
except rules.tiers.min_population = 20 and rules.tiers.refresh_ms = 1 (test_archetypes.sh).

Partitions: the input topic has 4 partitions and `touchflow produce` keys records by
subject with librdkafka's murmur2_random partitioner (Java's murmur2). Every buyer
lives on one partition (P): value tiers rank the whole population, and only one
partition is read in order, so the ranking a tier decision sees does not depend on how
the consumer interleaves partitions. The birthday customer lives on another partition;
each partition ends with a "clock" touchpoint on 2025-12-31, so its stream time passes
every timer of the year.

What is not asserted exactly: the tier events of the nine "elite" background buyers
(bg-00 .. bg-08), their key check-ins and the tier named in their care reminders.
Their tier is decided by review timers against the partition's cutoffs of the day,
which this script does not model (that they are the same on every run is what
test_determinism.sh shows); they exist to give the ranking a top
(bg-00) and a potential band (bg-01..08) with a gap between, so that the loyal buyer
crosses potential and then key at known purchases whatever that snapshot is. Of
those, one thing is certain whatever the snapshot: bg-00 is the most valuable buyer
(17,900 against at most 10,700) until the loyal buyer passes it in March and second
after, so with 20 to 39 buyers (key: the top floor(n x 5%) = 1, kept within the top
floor(n x 7%) = 2 from 29 buyers on) its one tier change is regular -> key
("top-is-key").
"""
import json
import math
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PARTITIONS = 4
MIN = 60_000
HOUR = 3_600_000
DAY = 86_400_000

# Defaults of config/README.md (the ones the expectations below lean on).
FOLLOWUP_DAYS = 3
FESTIVAL_BEFORE = 3
BIRTHDAY_BEFORE = 3
ANNIVERSARY_BEFORE = 3
COMPLAINT_FOLLOWUP_DAYS = 7
CHECKIN_DAYS = 30
CHURN_AFTER_DAYS = 180
CHURN_WARNING = 60
WEIGHT_INACTIVITY = 60  # alone at the warning: a silent customer is warned as it declines
COST_PER_CARE = 100
COST_PER_COMPLAINT = 2000
SLA_MIN = {"low": 4320, "medium": 1440, "high": 480, "critical": 120}
LEVELS = [("member", 0), ("silver", 1000), ("gold", 5000), ("platinum", 20000)]
MIN_POPULATION = 20
# rules.replenishment and rules.churn.weight_overdue
RHYTHM_MIN_INTERVALS = 2
RHYTHM_MIN_CONFIDENCE_PCT = 50
RHYTHM_MIN_GAP = 24 * HOUR
REPLENISH_BEFORE = 3
OVERDUE_DAYS = 7


def ms(text):
    """'2025-03-01 02:00' (UTC) -> ms since the epoch."""
    d = datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=timezone.utc)
    return int(d.timestamp()) * 1000


def out_time(t):
    """How derived events write times: RFC 3339, UTC, milliseconds."""
    d = datetime.fromtimestamp(t // 1000, timezone.utc)
    return d.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (t % 1000)


def in_time(t):
    """Touchpoints carry local China time."""
    d = datetime.fromtimestamp(t // 1000, timezone(timedelta(hours=8)))
    return d.strftime("%Y-%m-%dT%H:%M:%S+08:00")


def day_floor(t):
    return t - t % DAY


def date_text(t):
    return datetime.fromtimestamp(t // 1000, timezone.utc).strftime("%Y-%m-%d")


STREAM_END = ms("2025-12-31 12:00")  # the clock touchpoints


def festivals():
    cfg = json.loads((ROOT / "config" / "touchflow.json").read_text())
    out = []
    for entry in cfg["rules"]["care"]["festivals"]:
        day, name = entry.split(" ", 1)
        out.append((ms(day + " 00:00"), name))
    return sorted(out)


FESTIVALS = festivals()


# ---- partitions: librdkafka murmur2_random == Java's default partitioner ----

def murmur2(data):
    m, r = 0x5BD1E995, 24
    length = len(data)
    h = (0x9747B28C ^ length) & 0xFFFFFFFF
    for i in range(0, length - length % 4, 4):
        k = data[i] | data[i + 1] << 8 | data[i + 2] << 16 | data[i + 3] << 24
        k = (k * m) & 0xFFFFFFFF
        k ^= k >> r
        k = (k * m) & 0xFFFFFFFF
        h = (h * m) & 0xFFFFFFFF
        h ^= k
    rest, tail = length % 4, length - length % 4
    if rest == 3:
        h ^= data[tail + 2] << 16
    if rest >= 2:
        h ^= data[tail + 1] << 8
    if rest >= 1:
        h ^= data[tail]
        h = (h * m) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * m) & 0xFFFFFFFF
    h ^= h >> 15
    return h


def partition_of(key, n=PARTITIONS):
    return (murmur2(key.encode()) & 0x7FFFFFFF) % n


def pick_id(base, part):
    """base, or base-1, base-2, ...: the first that lands on partition part."""
    if partition_of(base) == part:
        return base
    k = 1
    while partition_of("%s-%d" % (base, k)) != part:
        k += 1
    return "%s-%d" % (base, k)


# ---- customers: their touchpoints and what they must cause ----

SOURCES = {
    "web_visit": "/web/shop-cn", "purchase": "/shop/orders", "complaint": "/crm/complaints",
    "complaint_update": "/crm/complaints", "survey": "/crm/surveys", "referral": "/crm/referrals",
    "profile": "/crm/profile", "contract_end": "/crm/contracts", "unsubscribe": "/crm/consent",
}


class Customer:
    def __init__(self, cid, elite=False):
        self.id = cid
        self.elite = elite
        self.inputs = []     # (arrival, event)
        self.want = []       # expected derived events
        self.stages = []     # (time, stage)
        self.tiers = []      # (time, tier)
        self.buys = []       # (time, order, amount, margin), event time order
        self.complaints = []  # times
        self.touches = []    # (arrival, n, event time, kind): the order the engine applies them
        self.rhythm_done = False
        self.n = 0

    # touchpoints
    def ev(self, t, kind, data=None, arrive=None):
        self.n += 1
        e = {"specversion": "1.0", "id": "%s.%d" % (self.id, self.n), "source": SOURCES[kind],
             "type": "touchpoint." + kind, "subject": self.id, "time": in_time(t)}
        if data is not None:
            e["data"] = data
        self.inputs.append((t if arrive is None else arrive, e))
        self.touches.append((t if arrive is None else arrive, self.n, t, kind))
        return e

    def visit(self, t, arrive=None):
        self.ev(t, "web_visit", {"channel": "web", "page": "/tea", "duration_s": 60}, arrive)

    def buy(self, t, order, amount, margin, arrive=None):
        self.ev(t, "purchase", {"order_id": order, "amount": amount, "currency": "CNY", "margin": margin}, arrive)
        self.buys.append((t, order, amount, margin))
        self.buys.sort()

    def complaint(self, t, cid, category, severity):
        self.ev(t, "complaint", {"complaint_id": cid, "category": category, "severity": severity})
        self.complaints.append(t)

    def update(self, t, cid, status):
        self.ev(t, "complaint_update", {"complaint_id": cid, "status": status})

    # expectations
    def expect(self, t, type_, rule, **fig):
        e = {"subject": self.id, "type": "touchflow." + type_, "time": out_time(t), "t": t, "rule": rule}
        e.update(fig)
        self.want.append(e)
        return e

    def stage(self, t, frm, to, rule, cause, **fig):
        self.stages.append((t, to))
        self.expect(t, "lifecycle.stage_changed", rule, **{"from": frm, "to": to, "cause": cause}, **fig)

    def tier(self, t, frm, to, rule, **fig):
        self.tiers.append((t, to))
        self.expect(t, "tier.changed", rule, **{"from": frm, "to": to}, **fig)

    def silent_warning(self, t, days_since_purchase):
        """The churn warning that comes with a decline by inactivity, for that alone."""
        self.warned_at = t
        self.expect(t, "churn.warning", "risk_above_warning", risk=WEIGHT_INACTIVITY, reasons=["inactivity"],
                    warning_threshold=CHURN_WARNING, stage="decline", days_since_purchase=days_since_purchase,
                    open_complaints=0)

    def cleared_by_purchase(self, t, risk=0):
        """A purchase retracts a standing warning; right after it inactivity is nil."""
        self.expect(t, "churn.cleared", "purchase", risk=risk, warned_days=(t - self.warned_at) // DAY)

    def stage_at(self, t):
        s = "none"
        for at, to in sorted(self.stages, key=lambda x: x[0]):
            if at <= t:
                s = to
        return s

    def tier_at(self, t):
        first = self.buys[0][0] if self.buys else None
        s = "none" if first is None or t < first else "regular"
        for at, to in self.tiers:
            if at <= t:
                s = to
        return s

    def care(self, t, kind, occasion, **fig):
        """stage and tier are filled in by finish(), once every change is known."""
        fig = dict(fig, kind=kind, occasion=occasion, due=out_time(t), stage=None)
        if not self.elite:
            fig["tier"] = None
        return self.expect(t, "care.reminder", kind, **fig)

    def finish(self):
        for w in self.want:
            if w["type"] == "touchflow.care.reminder":
                w["stage"] = self.stage_at(w["t"])
                if not self.elite:
                    w["tier"] = self.tier_at(w["t"])
        self.want.sort(key=lambda w: w["t"])  # stable: same-time events keep their order

    def cares_before(self, t):
        return sum(1 for w in self.want if w["type"] == "touchflow.care.reminder" and w["t"] < t)

    def value_at(self, t):
        """Lifetime profit as of a rule firing at t: margins less the cost to serve."""
        margins = sum(b[3] for b in self.buys if b[0] <= t)
        return margins - COST_PER_CARE * self.cares_before(t) - COST_PER_COMPLAINT * sum(
            1 for c in self.complaints if c <= t)

    # the usual reminders
    def post_purchase(self, until=STREAM_END):
        """A follow-up FOLLOWUP_DAYS after each purchase, unless a later purchase
        (which takes the follow-up over) comes first. Purchases in time order."""
        for i, (t, order, _, _) in enumerate(self.buys):
            due = t + FOLLOWUP_DAYS * DAY
            nxt = self.buys[i + 1][0] if i + 1 < len(self.buys) else None
            if (nxt is None or due <= nxt) and due <= until:
                self.care(due, "post_purchase", "order:" + order)

    def rhythm(self, until=STREAM_END):
        """The replenishment reminders and purchase.overdue signals (insight.c), from
        the purchases in the order applied: Welford over the intervals in days (one
        before the first, or after the latest purchase; under RHYTHM_MIN_GAP is the
        same trip), the expected purchase at the latest plus the mean interval, the
        confidence n / (n + 1) x (1 - sd / mean) to three decimals. With a rhythm, a
        reminder REPLENISH_BEFORE days before the expected purchase (when after the
        purchase) and the signal OVERDUE_DAYS days after it, each when no purchase
        came first and the customer is not churned then. Once per customer."""
        if self.rhythm_done:
            return
        self.rhythm_done = True
        n, mean, m2 = 0, 0.0, 0.0
        first = last = None
        seen = None
        applied = sorted(self.touches)
        for i, (_, _, t, kind) in enumerate(applied):
            seen = t if seen is None else max(seen, t)
            if kind != "purchase":
                continue
            anchor = t
            gap = None
            if first is None:
                first = last = t
            elif t >= last:
                gap, last = t - last, t
            else:
                if t < first:
                    gap, first = first - t, t
                anchor = last
            if gap is not None and gap >= RHYTHM_MIN_GAP:
                x = gap / DAY
                n += 1
                delta = x - mean
                mean += delta / n
                m2 += delta * (x - mean)
            if n < 1:
                continue
            expected = anchor + math.floor(mean * DAY + 0.5)
            conf = 0.0
            if n >= 2 and mean > 0:
                cv = math.sqrt(m2 / (n - 1) if m2 > 0 else 0) / mean
                conf = math.floor(n / (n + 1) * (1 - cv if cv < 1 else 0) * 1000 + 0.5) / 1000
            if n < RHYTHM_MIN_INTERVALS or math.floor(conf * 1000 + 0.5) < RHYTHM_MIN_CONFIDENCE_PCT * 10:
                continue
            later = [b[2] for b in applied[i + 1:] if b[3] == "purchase"]
            until_next = later[0] if later else None
            remind = expected - REPLENISH_BEFORE * DAY
            late = expected + OVERDUE_DAYS * DAY
            date = date_text(expected)
            if remind > last and remind >= seen and (until_next is None or remind <= until_next) and \
                    remind <= until and self.stage_at(remind) != "churned":
                self.care(remind, "replenishment", "replenishment:" + date, date=date, confidence=conf)
            if late >= seen and (until_next is None or late <= until_next) and late <= until and \
                    self.stage_at(late) != "churned":
                self.expect(late, "purchase.overdue", "purchase_rhythm", expected_date=date,
                            days_overdue=OVERDUE_DAYS, confidence=conf, intervals=n,
                            days_since_purchase=(late - last) // DAY)

    def festivals(self, start, end=STREAM_END):
        """Greetings FESTIVAL_BEFORE days before each festival while the customer is
        active (a buyer, not churned) from start to end."""
        for day, name in FESTIVALS:
            if day < day_floor(start):
                continue
            due = day - FESTIVAL_BEFORE * DAY
            if due < start:
                raise SystemExit("%s: becomes active between the greeting and %s: a late greeting" % (self.id, name))
            if due < end and due <= STREAM_END:
                self.care(due, "festival", "%s:%s" % (name, date_text(day)[:4]), date=date_text(day))


def spend_windows(buys, now):
    """Spend in the last window and the one before, as the engine keeps it (README,
    known limits): in buckets of a sixth of rules.stages.spend_window_days (15 days),
    counted from the epoch; the recent window is the current bucket and the five
    before it."""
    w = 15 * DAY
    recent = previous = 0
    for t, _, amount, _ in buys:
        age = now // w - t // w
        if 0 <= age < 6:
            recent += amount
        elif 6 <= age < 12:
            previous += amount
    return recent, previous


def first_spend_decline(c, anchor, until):
    """The first review (every 7 days from the last touchpoint, anchor) at which
    spend over the recent window is under half the window before; 180 days of
    tenure first."""
    t = anchor + 7 * DAY
    while t <= until:
        recent, previous = spend_windows([b for b in c.buys if b[0] <= t], t)
        if t - c.buys[0][0] >= 180 * DAY and previous > 0 and recent * 100 < previous * 50:
            return t, recent, previous
        t += 7 * DAY
    return None


def points_level(spend):
    pts = spend // 100
    lvl = LEVELS[0]
    for name, minp in LEVELS:
        if pts >= minp:
            lvl = (name, minp)
    return pts, lvl


def loyalty_changes(c):
    """member level changes at the purchases that cross a threshold."""
    spend, level = 0, None
    for t, _, amount, _ in c.buys:
        spend += amount
        pts, (name, minp) = points_level(spend)
        if level is not None and name != level:
            c.expect(t, "loyalty.level_changed", "points", **{"from": level, "to": name}, points=pts, min_points=minp)
        level = name


def build():
    p_main = partition_of("cust-loyal")
    p_other = (p_main + 1) % PARTITIONS
    ids = {}

    def new(role, base, part=p_main, elite=False):
        c = Customer(pick_id(base, part), elite)
        ids[role] = c.id
        return c

    customers = []

    # ---- background: 30 one-off buyers on 2024-12-10, elite first ----
    # bg-00 the top (margin 18000), bg-01..08 a band (10000..10700), bg-09..29 low
    # (2000..6000). A web visit each on 2025-01-10 puts some 30 records between them
    # and the loyal buyer's tier decisions (the population is read per batch).
    for i in range(30):
        margin = 18000 if i == 0 else 10000 + 100 * (i - 1) if i <= 8 else 2000 + 200 * (i - 9)
        c = new("bg-%02d" % i, "cust-bg-%02d" % i, elite=i <= 8)
        t0 = ms("2024-12-10 01:00") + i * 20 * MIN
        c.buy(t0, "o-bg-%02d" % i, margin * 3, margin)
        c.visit(ms("2025-01-10 01:00") + i * 20 * MIN)
        c.stage(t0, "prospect", "growth", "first_purchase", "purchase", purchases=1)
        c.stage(t0 + 30 * DAY, "growth", "decline", "inactivity", "timer", purchases=1, threshold_days=30,
                mean_interval_days=-1, days_since_purchase=30)
        c.silent_warning(t0 + 30 * DAY, 30)  # standing until the churn: they never come back
        t_churn = t0 + CHURN_AFTER_DAYS * DAY
        c.stage(t_churn, "decline", "churned", "no_purchase", "timer", purchases=1, days_since_purchase=180)
        c.expect(t_churn, "winback.opportunity", "no_purchase", cause="no_purchase", purchases=1,
                 days_since_purchase=180, churned_count=1)
        c.post_purchase()
        c.festivals(t0, t_churn)
        if not c.elite:
            c.tier(t_churn, "regular", "temporary", "one_off_buyer", value=c.value_at(t_churn), purchases=1)
        customers.append(c)

    # ---- 1. loyal buyer: every 16 days, big margins, mature, potential, key ----
    c = new("loyal", "cust-loyal")
    c.visit(ms("2025-01-03 02:00"))
    c.stages.append((ms("2025-01-03 02:00"), "prospect"))
    c.care(ms("2025-01-03 02:00"), "welcome", "welcome")
    first = ms("2025-01-04 03:00")
    times = [first + 16 * DAY * k for k in range(12)]            # 2025-01-04 .. 06-29
    times += [times[-1] + 31 * DAY + 16 * DAY * k for k in range(10)]  # a 31-day gap, 07-30 .. 12-21
    for k, t in enumerate(times):
        c.buy(t, "o-loyal-%02d" % (k + 1), 40000, 4000)
    c.stage(first, "prospect", "growth", "first_purchase", "purchase", purchases=1)
    # 5 purchases and 90 days: the review timer at the 90th day (6 purchases by then)
    c.stage(first + 90 * DAY, "growth", "mature", "mature_threshold", "timer", purchases=6, tenure_days=90,
            days_since_purchase=10)
    c.post_purchase()
    c.festivals(first)
    # The 31 days without contact after 06-29: a key check-in at day 30 (the mean
    # interval is 16 days, so the decline threshold is 32 days: no decline).
    gap = times[11] + CHECKIN_DAYS * DAY
    c.care(gap, "key_checkin", "checkin:" + date_text(gap), days_without_contact=30)
    loyalty_changes(c)
    # Every 16 days is a rhythm from the 3rd purchase: a replenishment reminder 13 days
    # after each, and one purchase.overdue in the 31-day gap. Each reminder is a care
    # action, which the values below count.
    c.rhythm()
    # value 11600 at the 3rd purchase: over the band (<= 10700), under bg-00 (~17800)
    c.tier(times[2], "regular", "potential", "value_rank", value=c.value_at(times[2]), purchases=3)
    # value 19200 at the 5th (two reminders since the 3rd): over bg-00
    c.tier(times[4], "potential", "key", "value_rank", value=c.value_at(times[4]), purchases=5)
    customers.append(c)

    # ---- 2. seasonal buyer: Mid-Autumn 2024, Spring Festival 2025, Mid-Autumn 2025 ----
    c = new("seasonal", "cust-seasonal")
    buys = [ms("2024-09-12 02:00"), ms("2024-09-15 06:00"), ms("2025-01-16 02:00"), ms("2025-01-20 02:00"),
            ms("2025-01-24 02:00"), ms("2025-09-22 02:00")]
    for k, t in enumerate(buys):
        c.buy(t, "o-season-%d" % (k + 1), 12800, 1200)
    c.stage(buys[0], "prospect", "growth", "first_purchase", "purchase", purchases=1)
    # mean interval 3 days -> the 30-day floor
    c.stage(buys[1] + 30 * DAY, "growth", "decline", "inactivity", "timer", purchases=2, threshold_days=30,
            mean_interval_days=3)
    c.silent_warning(buys[1] + 30 * DAY, 30)
    c.stage(buys[2], "decline", "growth", "recovered_purchase", "purchase", purchases=3)
    c.cleared_by_purchase(buys[2])
    c.stage(buys[4], "growth", "mature", "mature_threshold", "purchase", purchases=5, tenure_days=134)
    # mean interval 134 / 4 = 33.5 days -> 67 days
    c.stage(buys[4] + 67 * DAY, "mature", "decline", "inactivity", "timer", purchases=5, threshold_days=67,
            mean_interval_days=33)
    c.silent_warning(buys[4] + 67 * DAY, 67)
    t_churn = buys[4] + CHURN_AFTER_DAYS * DAY
    c.stage(t_churn, "decline", "churned", "no_purchase", "timer", purchases=5, days_since_purchase=180)
    c.expect(t_churn, "winback.opportunity", "no_purchase", cause="no_purchase", purchases=5,
             days_since_purchase=180, churned_count=1)
    c.stage(buys[5], "churned", "growth", "winback_purchase", "purchase", purchases=6)
    c.expect(buys[5], "winback.succeeded", "winback_purchase", order_id="o-season-6", amount=12800,
             churned_count=1, days_churned=(buys[5] - t_churn) // DAY)
    # the warning stood through the churn; the win-back purchase retracts it
    c.cleared_by_purchase(buys[5])
    # back in growth with 6 purchases and a year of tenure: mature at once
    c.stage(buys[5], "growth", "mature", "mature_threshold", "purchase", purchases=6)
    # Its only purchase since the spring leaves the recent spend window (15-day
    # buckets: at 77 days, 2025-12-08) before 150 days of inactivity: spend decline.
    t, recent, previous = first_spend_decline(c, buys[5], STREAM_END)
    c.stage(t, "mature", "decline", "spend_decline", "timer", purchases=6, recent_spend=recent,
            previous_spend=previous, days_since_purchase=(t - buys[5]) // DAY)
    # Its own 150-day threshold is past half way to the churn point, so the silence
    # counts in full at 90 days: at the review of day 84 inactivity (84/90 - 1/2) x 2
    # x 60 = 52 and the spend decline 10 reach the warning.
    c.warned_at = buys[5] + 84 * DAY
    c.expect(c.warned_at, "churn.warning", "risk_above_warning", risk=62, reasons=["inactivity", "spend_decline"],
             warning_threshold=CHURN_WARNING, stage="decline", days_since_purchase=84, open_complaints=0)
    c.post_purchase()
    c.festivals(buys[0], t_churn)
    c.festivals(buys[5])
    # the first purchase's anniversary (2025-09-12) falls while churned: none
    customers.append(c)

    # ---- 3. complaints: escalated twice, acknowledged in time, reopened ----
    c = new("complaint", "cust-complaint")
    c.visit(ms("2025-02-10 02:00"))
    c.stages.append((ms("2025-02-10 02:00"), "prospect"))
    c.care(ms("2025-02-10 02:00"), "welcome", "welcome")
    buys = [ms("2025-02-12 02:00"), ms("2025-03-10 02:00")] + [ms("2025-04-09 02:00") + 30 * DAY * k
                                                               for k in range(9)]
    for k, t in enumerate(buys):
        c.buy(t, "o-cmp-%02d" % (k + 1), 8800, 800)
    k1, k2 = "cmp-1001", "cmp-1002"
    c.complaint(ms("2025-03-03 01:00"), k1, "quality", "high")
    c.update(ms("2025-03-03 20:00"), k1, "acknowledged")      # after both deadlines
    c.update(ms("2025-03-05 01:00"), k1, "resolved")
    c.complaint(ms("2025-03-20 02:00"), k2, "shipping", "medium")
    c.update(ms("2025-03-20 10:00"), k2, "acknowledged")      # before its deadline
    c.update(ms("2025-03-21 02:00"), k2, "resolved")
    c.update(ms("2025-04-02 04:00"), k2, "reopened")          # the SLA starts over
    c.update(ms("2025-04-03 10:00"), k2, "acknowledged")      # after the new deadline, before twice it
    c.update(ms("2025-04-05 02:00"), k2, "resolved")
    opened1 = ms("2025-03-03 01:00")
    esc = dict(complaint_id=k1, category="quality", severity="high", sla_minutes=480,
               opened=out_time(opened1), open_complaints=1)
    c.expect(opened1 + 8 * HOUR, "complaint.escalated", "sla_deadline", level=1, **esc)
    c.expect(opened1 + 16 * HOUR, "complaint.escalated", "sla_twice_deadline", level=2, **esc)
    reopened = ms("2025-04-02 04:00")
    c.expect(reopened + 24 * HOUR, "complaint.escalated", "sla_deadline", level=1, complaint_id=k2,
             category="shipping", severity="medium", sla_minutes=1440, opened=out_time(reopened), open_complaints=1)
    c.stage(buys[0], "prospect", "growth", "first_purchase", "purchase", purchases=1)
    c.stage(buys[4], "growth", "mature", "mature_threshold", "purchase", purchases=5, tenure_days=116)
    c.post_purchase()
    c.festivals(buys[0])
    c.care(ms("2025-03-05 01:00") + 7 * DAY, "complaint_followup", "complaint:" + k1)
    c.care(ms("2025-03-21 02:00") + 7 * DAY, "complaint_followup", "complaint:" + k2)
    c.care(ms("2025-04-05 02:00") + 7 * DAY, "complaint_followup", "complaint:" + k2)
    customers.append(c)

    # ---- 4. referral chain: A refers B, B buys; B refers C, C buys twice ----
    a = new("ref-a", "cust-ref-a")
    b = new("ref-b", "cust-ref-b")
    cc = new("ref-c", "cust-ref-c")
    a.visit(ms("2025-03-01 02:00"))
    a.stages.append((ms("2025-03-01 02:00"), "prospect"))
    a.care(ms("2025-03-01 02:00"), "welcome", "welcome")
    a.ev(ms("2025-03-02 02:00"), "referral", {"referred_id": b.id})
    b.visit(ms("2025-03-04 02:00"))
    b.stages.append((ms("2025-03-04 02:00"), "prospect"))
    b.care(ms("2025-03-04 02:00"), "welcome", "welcome")
    tb = ms("2025-03-06 02:00")
    b.buy(tb, "o-ref-b-1", 6600, 2000)
    b.ev(ms("2025-03-08 02:00"), "referral", {"referred_id": cc.id})
    a.expect(tb, "referral.credited", "referred_first_purchase", referred_id=b.id, order_id="o-ref-b-1",
             amount=6600, currency="CNY")
    b.stage(tb, "prospect", "growth", "first_purchase", "purchase", purchases=1)
    b.stage(tb + 30 * DAY, "growth", "decline", "inactivity", "timer", purchases=1, threshold_days=30,
            mean_interval_days=-1)
    b.silent_warning(tb + 30 * DAY, 30)
    t_churn = tb + CHURN_AFTER_DAYS * DAY
    b.stage(t_churn, "decline", "churned", "no_purchase", "timer", purchases=1, days_since_purchase=180)
    b.expect(t_churn, "winback.opportunity", "no_purchase", cause="no_purchase", purchases=1, churned_count=1)
    b.post_purchase()
    b.festivals(tb, t_churn)
    b.tier(t_churn, "regular", "temporary", "one_off_buyer", value=b.value_at(t_churn), purchases=1)
    tc1, tc2 = ms("2025-03-12 02:00"), ms("2025-03-20 02:00")
    cc.buy(tc1, "o-ref-c-1", 5500, 1500)
    cc.buy(tc2, "o-ref-c-2", 4500, 1200)
    b.expect(tc1, "referral.credited", "referred_first_purchase", referred_id=cc.id, order_id="o-ref-c-1",
             amount=5500, currency="CNY")
    cc.stage(tc1, "prospect", "growth", "first_purchase", "purchase", purchases=1)
    cc.stage(tc2 + 30 * DAY, "growth", "decline", "inactivity", "timer", purchases=2, threshold_days=30,
             mean_interval_days=8)
    cc.silent_warning(tc2 + 30 * DAY, 30)
    t_churn = tc2 + CHURN_AFTER_DAYS * DAY
    cc.stage(t_churn, "decline", "churned", "no_purchase", "timer", purchases=2, days_since_purchase=180)
    cc.expect(t_churn, "winback.opportunity", "no_purchase", cause="no_purchase", purchases=2, churned_count=1)
    cc.post_purchase()
    cc.festivals(tc1, t_churn)
    customers += [a, b, cc]

    # ---- 5. silent churn, then win-back ----
    c = new("churn", "cust-churn")
    c.visit(ms("2025-01-06 02:00"))
    c.stages.append((ms("2025-01-06 02:00"), "prospect"))
    c.care(ms("2025-01-06 02:00"), "welcome", "welcome")
    buys = [ms("2025-01-08 02:00"), ms("2025-01-22 02:00"), ms("2025-02-05 02:00"), ms("2025-10-20 02:00")]
    for k, t in enumerate(buys):
        c.buy(t, "o-churn-%d" % (k + 1), 9900, 1500)
    c.stage(buys[0], "prospect", "growth", "first_purchase", "purchase", purchases=1)
    # Two intervals of 14 days are a rhythm: the purchase expected on 02-19 is
    # overdue from 02-26 (rhythm()), which adds rules.churn.weight_overdue (10) to the
    # risk. At the review of day 28 inactivity (28/30 - 1/2) x 2 x 60 = 52 and overdue
    # reach the warning two days before the inactivity threshold: warned earlier.
    t_warn = buys[2] + 28 * DAY
    c.stage(t_warn, "growth", "decline", "churn_risk", "timer", purchases=3, risk=62, warning_threshold=60,
            days_since_purchase=28)
    c.warned_at = t_warn  # warned before the churn, not only after it
    c.expect(t_warn, "churn.warning", "risk_above_warning", risk=62, reasons=["inactivity", "overdue"],
             warning_threshold=CHURN_WARNING, stage="decline", days_since_purchase=28, open_complaints=0)
    t_churn = buys[2] + CHURN_AFTER_DAYS * DAY
    c.stage(t_churn, "decline", "churned", "no_purchase", "timer", purchases=3, days_since_purchase=180)
    c.expect(t_churn, "winback.opportunity", "no_purchase", cause="no_purchase", purchases=3,
             days_since_purchase=180, churned_count=1, spend=3 * 9900)
    c.stage(buys[3], "churned", "growth", "winback_purchase", "purchase", purchases=4)
    c.expect(buys[3], "winback.succeeded", "winback_purchase", order_id="o-churn-4", amount=9900, churned_count=1,
             days_churned=(buys[3] - t_churn) // DAY)
    c.cleared_by_purchase(buys[3])
    c.post_purchase()
    c.festivals(buys[0], t_churn)
    c.festivals(buys[3])
    customers.append(c)

    # ---- 6. late events: a churn warning cleared by a purchase that arrives late ----
    c = new("late", "cust-late")
    c.visit(ms("2025-03-30 02:00"))
    c.stages.append((ms("2025-03-30 02:00"), "prospect"))
    c.care(ms("2025-03-30 02:00"), "welcome", "welcome")
    c.buy(ms("2025-04-01 02:00"), "o-late-1", 9000, 1000)
    c.stage(ms("2025-04-01 02:00"), "prospect", "growth", "first_purchase", "purchase", purchases=1)
    c.visit(ms("2025-03-20 02:00"), arrive=ms("2025-04-10 05:00"))  # older than the first touchpoint
    c.buy(ms("2025-04-15 02:00"), "o-late-2", 9000, 1000)
    c.complaint(ms("2025-04-22 02:00"), "cmp-2001", "service", "low")
    c.update(ms("2025-04-22 03:00"), "cmp-2001", "acknowledged")
    c.complaint(ms("2025-04-23 02:00"), "cmp-2002", "quality", "low")
    c.update(ms("2025-04-23 03:00"), "cmp-2002", "acknowledged")
    t_survey = ms("2025-05-08 02:00")
    c.ev(t_survey, "survey", {"expectation": 10, "perception": 4, "nps": 0})
    # risk at the survey: inactivity 60 x (23/30 - 0.5) x 2 = 32, two open and
    # repeated complaints 15, satisfaction 40% 10, NPS 0 5: 62
    c.stage(t_survey, "growth", "decline", "churn_risk", "survey", purchases=2, risk=62, warning_threshold=60)
    c.expect(t_survey, "churn.warning", "risk_above_warning", risk=62,
             reasons=["inactivity", "repeated_complaints", "low_satisfaction", "low_nps"], warning_threshold=60,
             stage="decline", days_since_purchase=23, open_complaints=2, satisfaction=40.0)
    # A purchase of 05-07 arrives after the survey of 05-08: it counts, and what it
    # causes happens at the customer's latest touchpoint (05-08), never before it.
    t_late = ms("2025-05-07 02:00")
    c.buy(t_late, "o-late-3", 9000, 1000, arrive=ms("2025-05-08 06:00"))
    c.stage(t_survey, "decline", "growth", "recovered_purchase", "purchase", purchases=3, days_since_purchase=1,
            tenure_days=37)
    # risk after it: no inactivity, complaints 15, satisfaction 10, NPS 5
    c.expect(t_survey, "churn.cleared", "purchase", risk=30, warned_days=0)
    c.update(ms("2025-05-12 02:00"), "cmp-2001", "resolved")
    c.update(ms("2025-05-20 02:00"), "cmp-2002", "resolved")
    t_exit = ms("2025-06-01 02:00")
    c.ev(t_exit, "contract_end", {"reason": "moved abroad"})
    c.stage(t_exit, "growth", "churned", "explicit_exit", "contract_end", purchases=3, days_since_purchase=25)
    c.expect(t_exit, "winback.opportunity", "explicit_exit", cause="contract_end", purchases=3,
             days_since_purchase=25, churned_count=1)
    c.visit(ms("2025-05-25 02:00"), arrive=ms("2025-06-03 02:00"))  # late, after the exit
    c.post_purchase()
    c.festivals(ms("2025-04-01 02:00"), t_exit)
    c.care(ms("2025-05-12 02:00") + 7 * DAY, "complaint_followup", "complaint:cmp-2001")
    c.care(ms("2025-05-20 02:00") + 7 * DAY, "complaint_followup", "complaint:cmp-2002")
    customers.append(c)

    # ---- 7. a prospect with a birthday and a wedding day, on another partition; it
    # withdraws consent to sms, and its reminders name the channels left ----
    c = new("birthday", "cust-birthday", part=p_other)
    c.visit(ms("2025-03-15 02:00"))
    c.stages.append((ms("2025-03-15 02:00"), "prospect"))
    c.care(ms("2025-03-15 02:00"), "welcome", "welcome", channels=["email", "sms", "phone"])
    c.ev(ms("2025-03-16 02:00"), "profile", {"birthday": "1990-08-20", "anniversary": "2018-06-10", "name": "Zhou",
                                             "consent": {"sms": False}, "tags": ["tea-lover", "wechat"]})
    c.care(ms("2025-06-10 00:00") - ANNIVERSARY_BEFORE * DAY, "date", "date:2025", date="2025-06-10",
           channels=["email", "phone"])
    c.care(ms("2025-08-20 00:00") - BIRTHDAY_BEFORE * DAY, "birthday", "birthday:2025", date="2025-08-20",
           channels=["email", "phone"])
    customers.append(c)

    # ---- 8. a prospect that unsubscribes from email (not an exit), then ends its
    # contract: churned, without a win-back opportunity (it never bought) ----
    c = new("leaver", "cust-leaver", part=p_other)
    c.visit(ms("2025-04-01 02:00"))
    c.stages.append((ms("2025-04-01 02:00"), "prospect"))
    c.care(ms("2025-04-01 02:00"), "welcome", "welcome")
    c.ev(ms("2025-04-10 02:00"), "unsubscribe", {"channel": "email", "reason": "too many mails"})
    t_exit = ms("2025-04-20 02:00")
    c.ev(t_exit, "contract_end", {"reason": "not interested"})
    c.stage(t_exit, "prospect", "churned", "explicit_exit", "contract_end", purchases=0, stage="churned",
            tier="none", channels=["sms", "phone"])
    customers.append(c)

    # ---- the clocks: the last touchpoint of each partition ----
    for p in range(PARTITIONS):
        c = new("clock-p%d" % p, "cust-clock-p%d" % p, part=p)
        c.visit(STREAM_END)
        c.stages.append((STREAM_END, "prospect"))
        c.care(STREAM_END, "welcome", "welcome")
        customers.append(c)

    for c in customers:
        c.rhythm()
        c.finish()
    ids["_partition_main"] = p_main
    ids["_partition_other"] = p_other
    return customers, ids


def inputs(customers):
    rows = []
    for c in customers:
        for arrive, e in c.inputs:
            rows.append((arrive, e["id"], e))
    rows.sort(key=lambda r: (r[0], r[1]))
    return [r[2] for r in rows]


# ---- checks ----

FAMILIES = ["lifecycle", "churn", "care", "complaint", "tier", "loyalty", "referral", "winback", "purchase"]


def family(type_):
    return type_.split(".")[1]


def load_derived(path):
    recs = []
    for line in open(path):
        if line.strip():
            r = json.loads(line)
            r["event"] = json.loads(r["value"])
            recs.append(r)
    return recs


def project(ev, want):
    """The figures of ev that want names."""
    got = {"subject": ev["subject"], "type": ev["type"], "time": ev["time"]}
    d = ev.get("data", {})
    for k in want:
        if k in ("subject", "type", "time", "t"):
            continue
        got[k] = d.get(k, "<absent>")
    return got


def strip(want):
    return {k: v for k, v in want.items() if k != "t"}


def check(path, ids_out=None):
    customers, _ = build()
    recs = load_derived(path)
    problems = []
    by_id = {c.id: c for c in customers}

    # shape: every record keyed by its subject, on its family's topic, a proper event
    ids = [r["event"]["id"] for r in recs]
    if len(set(ids)) != len(ids):
        dup = sorted({i for i in ids if ids.count(i) > 1})
        problems.append("duplicate ids: %d, e.g. %s" % (len(dup), [
            (r["event"]["subject"], r["event"]["type"], r["event"]["time"]) for r in recs
            if r["event"]["id"] == dup[0]]))
    for r in recs:
        ev = r["event"]
        if r["key"] != ev["subject"] or not r["topic"].endswith("." + family(ev["type"])):
            problems.append("record keyed %s on %s for %s %s" % (r["key"], r["topic"], ev["subject"], ev["type"]))
        if ev.get("specversion") != "1.0" or ev.get("source") != "/touchflow" or len(ev["id"]) != 32 or \
                ev["data"].get("rule") is None:
            problems.append("malformed derived event %s" % json.dumps(ev))
        if ev["subject"] not in by_id:
            problems.append("derived event for an unknown customer: %s" % json.dumps(ev))
        # the context every derived event carries (EVENTS.md, context figures)
        d = ev["data"]
        ctx_ok = isinstance(d.get("channels"), list)
        if ev["type"] != "touchflow.referral.credited":
            ctx_ok = ctx_ok and isinstance(d.get("stage"), str) and isinstance(d.get("tier"), str)
        if not ctx_ok:
            problems.append("derived event without its context figures: %s" % json.dumps(ev))

    # per customer and family, in the order of the (one-partition) output topic
    stable_ids = []
    for c in customers:
        for fam in FAMILIES:
            got = [r["event"] for r in recs if r["event"]["subject"] == c.id and family(r["event"]["type"]) == fam]
            if c.elite and fam == "tier":
                for ev in got:  # not asserted exactly; the shape only
                    d = ev["data"]
                    if d["rule"] not in ("value_rank", "one_off_buyer") or d["from"] == d["to"]:
                        problems.append("%s: odd tier change %s" % (c.id, json.dumps(d)))
                continue
            if c.elite and fam == "care":
                got = [ev for ev in got if ev["data"].get("kind") != "key_checkin"]
            want = [w for w in c.want if family(w["type"]) == fam]
            proj = [project(g, w) for g, w in zip(got, want)]
            if len(got) != len(want) or proj != [strip(w) for w in want]:
                lines = ["%s %s: %d derived events, %d expected" % (c.id, fam, len(got), len(want))]
                for i in range(max(len(got), len(want))):
                    w = strip(want[i]) if i < len(want) else None
                    g = project(got[i], want[i]) if i < len(got) and i < len(want) else (
                        {"type": got[i]["type"], "time": got[i]["time"], **got[i]["data"]} if i < len(got) else None)
                    mark = "  " if g == w else "!!"
                    lines.append("  %s want %s" % (mark, json.dumps(w, sort_keys=True)))
                    if g != w:
                        lines.append("     got  %s" % json.dumps(g, sort_keys=True))
                problems.append("\n".join(lines))
            stable_ids += [(g["subject"], g["type"], g["time"], g["id"]) for g in got]

    # the loyal buyer's tier changes were decided against a real population
    loyal = next(c for c in customers if c.id.startswith("cust-loyal"))
    for r in recs:
        ev = r["event"]
        if ev["subject"] == loyal.id and family(ev["type"]) == "tier":
            d = ev["data"]
            cut = d.get("key_cutoff") if d["to"] == "key" else d.get("potential_cutoff")
            if d.get("buyers", 0) < MIN_POPULATION or cut is None or cut > d["value"]:
                problems.append("loyal tier change without a population behind it: %s" % json.dumps(d))

    if ids_out:
        with open(ids_out, "w") as f:
            for row in sorted(stable_ids):
                f.write(json.dumps(row) + "\n")
    for p in problems:
        print("  " + p.replace("\n", "\n  "))
    return 0 if not problems else 1


def check_top_is_key(path):
    _, ids = build()
    top = ids["bg-00"]
    got = [json.loads(r["value"]) for r in map(json.loads, filter(str.strip, open(path)))]
    tiers = [(e["data"]["from"], e["data"]["to"], e["data"]["rule"], e["time"], e["data"].get("value"),
              e["data"].get("key_cutoff"), e["data"].get("buyers"))
             for e in got if e["subject"] == top and family(e["type"]) == "tier"]
    if [t[:3] for t in tiers] == [("regular", "key", "value_rank")]:
        return 0
    print("  %s, the most valuable buyer, should become key once: got (from, to, rule, time, value, key_cutoff, "
          "buyers) %s" % (top, tiers))
    return 1


def check_partitions(path):
    bad = 0
    n = 0
    for line in open(path):
        if not line.strip():
            continue
        r = json.loads(line)
        n += 1
        if r["partition"] != partition_of(r["key"]):
            bad += 1
            if bad <= 5:
                print("  %s on partition %d, computed %d" % (r["key"], r["partition"], partition_of(r["key"])))
    return 0 if bad == 0 and n > 0 else 1


def main(argv):
    cmd = argv[1] if len(argv) > 1 else ""
    if cmd == "input":
        customers, _ = build()
        for e in inputs(customers):
            print(json.dumps(e, separators=(",", ":")))
    elif cmd == "expected":
        customers, _ = build()
        for c in customers:
            for w in c.want:
                print(json.dumps(strip(w), sort_keys=True))
    elif cmd == "ids":
        print(json.dumps(build()[1], indent=1, sort_keys=True))
    elif cmd == "partitions":
        return check_partitions(argv[2])
    elif cmd == "top-is-key":
        return check_top_is_key(argv[2])
    elif cmd == "check":
        ids_out = argv[argv.index("--ids") + 1] if "--ids" in argv else None
        return check(argv[2], ids_out)
    else:
        print(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
