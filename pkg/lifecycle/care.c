/* Care reminders and complaint SLAs: the dated occasions of a customer, each
 * reminded once (DOMAIN.md: care, complaints). */
#include <stdio.h>
#include <string.h>

#include "lifecycle/internal.h"

void tf_lc_format_date(int64_t ms, char out[16])
{
    int64_t y;
    int m, d;
    tf_civil_from_days(tf_lc_day_floor(ms) / TF_MS_PER_DAY, &y, &m, &d);
    snprintf(out, 16, "%04lld-%02d-%02d", (long long)y, m, d);
}

static int64_t year_of(int64_t ms)
{
    int64_t y;
    int m, d;
    tf_civil_from_days(tf_lc_day_floor(ms) / TF_MS_PER_DAY, &y, &m, &d);
    return y;
}

/* The date month/day in year y (29 February is the 28th in other years). */
static int64_t yearly_ms(int64_t y, int m, int d)
{
    int last = tf_month_days(y, m);
    return tf_days_from_civil(y, m, d > last ? last : d) * TF_MS_PER_DAY;
}

void tf_lc_care_reminder(tf_customer_t *c, const tf_cause *cause, const char *kind, const char *occasion,
                         int64_t date_ms, tf_emit *e)
{
    char due[TF_TIME_RFC3339_LEN], date[16];
    c->care_actions++;
    tf_derived_t *d = tf_lc_derive(e, TF_DERIVED_CARE_REMINDER, cause, kind);
    if (!d)
        return;
    tf_derived_add_str(d, "kind", kind);
    tf_derived_add_str(d, "occasion", occasion);
    tf_time_format_rfc3339(cause->at_ms, due);
    tf_derived_add_str(d, "due", due);
    if (date_ms) {
        tf_lc_format_date(date_ms, date);
        tf_derived_add_str(d, "date", date);
    }
    tf_derived_add_str(d, "stage", tf_stage_name(c->stage));
    tf_derived_add_str(d, "tier", tf_tier_name(c->tier));
    tf_lc_add_favourites(c, d); /* what to offer alongside (cross-sell) */
}

/* ---- complaints ---- */

static tf_complaint_t *complaint_find(tf_customer_t *c, const char *id)
{
    for (size_t i = 0; i < c->ncomplaints; i++)
        if (strcmp(c->complaint[i].id, id) == 0)
            return &c->complaint[i];
    return NULL;
}

/* How readily a remembered complaint gives way: a resolved one already followed
 * up first, then one whose follow-up is pending, open ones last. */
static int expendable(const tf_complaint_t *k)
{
    if (k->state != TF_COMPLAINT_RESOLVED)
        return 0;
    return k->followup_due_ms ? 1 : 2;
}

/* A free slot: the most expendable complaint gives way, the oldest among equals. */
static tf_complaint_t *complaint_slot(tf_customer_t *c)
{
    if (c->ncomplaints < TF_MAX_COMPLAINTS)
        return &c->complaint[c->ncomplaints++];
    size_t victim = 0;
    for (size_t i = 1; i < c->ncomplaints; i++) {
        const tf_complaint_t *k = &c->complaint[i], *v = &c->complaint[victim];
        if (expendable(k) > expendable(v) || (expendable(k) == expendable(v) && k->opened_ms < v->opened_ms))
            victim = i;
    }
    /* open_complaints counts the remembered complaints that are open: a forgotten
     * one could never be resolved again. */
    const tf_complaint_t *k = &c->complaint[victim];
    if (k->opened_ms > 0 && k->state != TF_COMPLAINT_RESOLVED && c->open_complaints > 0)
        c->open_complaints--;
    memmove(&c->complaint[victim], &c->complaint[victim + 1],
            sizeof(c->complaint[0]) * (c->ncomplaints - victim - 1));
    return &c->complaint[c->ncomplaints - 1];
}

void tf_lc_complaint(tf_customer_t *c, const tf_event_t *ev)
{
    c->complaints++;
    tf_complaint_t *k = complaint_find(c, ev->complaint_id);
    if (k) {
        if (k->opened_ms == 0) {
            /* Its update came first (out of order): the SLA counts from the
             * complaint, unless it is already acknowledged or resolved. */
            k->opened_ms = ev->time_ms;
            k->category = ev->category;
            k->severity = ev->severity;
            if (k->state != TF_COMPLAINT_RESOLVED)
                c->open_complaints++;
        }
        return; /* the same complaint again */
    }
    k = complaint_slot(c);
    memset(k, 0, sizeof(*k));
    tf_strlcpy(k->id, ev->complaint_id, sizeof(k->id));
    k->category = ev->category;
    k->severity = ev->severity;
    k->state = TF_COMPLAINT_OPEN;
    k->opened_ms = ev->time_ms;
    c->open_complaints++;
}

void tf_lc_complaint_update(const tf_config_rules *r, tf_customer_t *c, const tf_event_t *ev)
{
    tf_complaint_t *k = complaint_find(c, ev->complaint_id);
    if (!k) {
        k = complaint_slot(c);
        memset(k, 0, sizeof(*k));
        tf_strlcpy(k->id, ev->complaint_id, sizeof(k->id));
        k->state = TF_COMPLAINT_OPEN; /* the complaint itself has not arrived yet */
    }
    int was_open = k->opened_ms > 0 && k->state != TF_COMPLAINT_RESOLVED;
    switch (ev->status) {
    case TF_CST_ACKNOWLEDGED:
        if (k->state == TF_COMPLAINT_OPEN)
            k->state = TF_COMPLAINT_ACKNOWLEDGED;
        break;
    case TF_CST_RESOLVED:
        if (k->state == TF_COMPLAINT_RESOLVED)
            break;
        k->state = TF_COMPLAINT_RESOLVED;
        k->closed_ms = ev->time_ms;
        if (was_open && c->open_complaints > 0)
            c->open_complaints--;
        /* Each resolution is followed up on its own, however close two are. */
        if (r->complaint_followup_days > 0)
            k->followup_due_ms = ev->time_ms + r->complaint_followup_days * TF_MS_PER_DAY;
        break;
    case TF_CST_REOPENED:
        /* The SLA starts over. */
        if (k->state == TF_COMPLAINT_RESOLVED && k->opened_ms > 0)
            c->open_complaints++;
        k->state = TF_COMPLAINT_OPEN;
        k->level = 0;
        k->closed_ms = 0;
        /* Open again: the follow-up waits for the next resolution. */
        k->followup_due_ms = 0;
        if (k->opened_ms > 0)
            k->opened_ms = ev->time_ms;
        break;
    default:
        break;
    }
}

int64_t tf_lc_recent_complaints(const tf_config_rules *r, const tf_customer_t *c, int64_t now_ms)
{
    int64_t n = 0, since = now_ms - r->spend_window_days * TF_MS_PER_DAY;
    for (size_t i = 0; i < c->ncomplaints; i++)
        if (c->complaint[i].opened_ms > since)
            n++;
    return n;
}

static int64_t sla_ms(const tf_config_rules *r, tf_complaint_severity s)
{
    switch (s) {
    case TF_SEV_CRITICAL: return r->sla_critical_min * 60000;
    case TF_SEV_HIGH: return r->sla_high_min * 60000;
    case TF_SEV_LOW: return r->sla_low_min * 60000;
    default: return r->sla_medium_min * 60000;
    }
}

/* The complaint whose next escalation is earliest, and when. */
static tf_complaint_t *next_escalation(const tf_config_rules *r, tf_customer_t *c, int64_t *due)
{
    tf_complaint_t *best = NULL;
    for (size_t i = 0; i < c->ncomplaints; i++) {
        tf_complaint_t *k = &c->complaint[i];
        if (k->state != TF_COMPLAINT_OPEN || k->opened_ms == 0 || k->level >= 2)
            continue;
        int64_t at = k->opened_ms + sla_ms(r, k->severity) * (k->level + 1);
        if (!best || at < *due) {
            best = k;
            *due = at;
        }
    }
    return best;
}

/* The resolved complaint whose follow-up is due first (the first remembered among
 * equal times, so two firing at one time go in a fixed order), or NULL. */
static tf_complaint_t *next_complaint_followup(tf_customer_t *c)
{
    tf_complaint_t *best = NULL;
    for (size_t i = 0; i < c->ncomplaints; i++) {
        tf_complaint_t *k = &c->complaint[i];
        if (k->followup_due_ms > 0 && (!best || k->followup_due_ms < best->followup_due_ms))
            best = k;
    }
    return best;
}

/* ---- dated occasions ---- */

/* The next yearly occasion month/day not yet reminded (done_year) whose date is
 * today or later as of now, from first_year on; 0 when none. */
static int64_t next_yearly(int m, int d, int64_t first_year, int64_t done_year, int64_t now, int64_t before_days,
                           int64_t *year)
{
    int64_t today = tf_lc_day_floor(now), y = year_of(now) - 1;
    if (y < first_year)
        y = first_year;
    if (y <= done_year)
        y = done_year + 1;
    for (int i = 0; i < 4; i++, y++) {
        int64_t date = yearly_ms(y, m, d);
        if (date >= today) {
            *year = y;
            return date - before_days * TF_MS_PER_DAY;
        }
    }
    return 0;
}

static const tf_rules_festival *next_festival(const tf_config_rules *r, const tf_customer_t *c)
{
    int64_t today = tf_lc_day_floor(c->clock_ms);
    for (size_t i = 0; i < r->nfestivals; i++)
        if (r->festivals[i].day_ms >= today && r->festivals[i].day_ms > c->festival_done_ms)
            return &r->festivals[i];
    return NULL;
}

void tf_lc_schedule_care(const tf_config_rules *r, tf_customer_t *c)
{
    int64_t now = c->clock_ms, y;
    int active = c->purchases > 0 && c->stage != TF_STAGE_CHURNED;
    for (int t = TF_TIMER_BIRTHDAY; t < TF_TIMER__COUNT; t++)
        c->due[t] = 0;
    if (c->birth_month && c->stage != TF_STAGE_CHURNED) /* an exit ends the greetings too */
        c->due[TF_TIMER_BIRTHDAY] =
            next_yearly(c->birth_month, c->birth_day, 0, c->birthday_done_year, now, r->birthday_days_before, &y);
    if (active) {
        const tf_rules_festival *f = next_festival(r, c);
        if (f)
            c->due[TF_TIMER_FESTIVAL] = f->day_ms - r->festival_days_before * TF_MS_PER_DAY;
        int64_t fy;
        int fm, fd;
        tf_civil_from_days(tf_lc_day_floor(c->first_purchase_ms) / TF_MS_PER_DAY, &fy, &fm, &fd);
        c->due[TF_TIMER_ANNIVERSARY] =
            next_yearly(fm, fd, fy + 1, c->anniversary_done_year, now, r->anniversary_days_before, &y);
    }
    if (c->date_month && c->stage != TF_STAGE_CHURNED)
        c->due[TF_TIMER_DATE] = next_yearly(c->date_month, c->date_day, c->date_year, c->date_done_year, now,
                                            r->anniversary_days_before, &y);
    if (c->followup_order[0])
        c->due[TF_TIMER_FOLLOWUP] = c->followup_due_ms;
    /* A churned customer keeps its last tier (no review runs): no check-ins. */
    if (c->tier == TF_TIER_KEY && r->checkin_days > 0 && c->stage != TF_STAGE_CHURNED) {
        int64_t from = c->last_seen_ms > c->checkin_done_ms ? c->last_seen_ms : c->checkin_done_ms;
        c->due[TF_TIMER_CHECKIN] = from + r->checkin_days * TF_MS_PER_DAY;
    }
    const tf_complaint_t *fk = next_complaint_followup(c);
    if (fk)
        c->due[TF_TIMER_COMPLAINT_FOLLOWUP] = fk->followup_due_ms;
    int64_t at = 0;
    if (next_escalation(r, c, &at))
        c->due[TF_TIMER_SLA] = at;
    /* A due of 0 means "none"; an occasion due at the epoch is not a real one. */
    for (int t = TF_TIMER_BIRTHDAY; t < TF_TIMER__COUNT; t++)
        if (c->due[t] < 0)
            c->due[t] = 0;
}

static void escalate(const tf_config_rules *r, tf_customer_t *c, tf_complaint_t *k, const tf_cause *cause,
                     tf_emit *e)
{
    char opened[TF_TIME_RFC3339_LEN];
    k->level++;
    tf_derived_t *d = tf_lc_derive(e, TF_DERIVED_COMPLAINT_ESCALATED, cause, k->level == 1 ? "sla_deadline" : "sla_twice_deadline");
    if (!d)
        return;
    tf_derived_add_str(d, "complaint_id", k->id);
    tf_derived_add_int(d, "level", k->level);
    tf_derived_add_str(d, "category", k->category ? tf_complaint_category_name(k->category) : "unknown");
    tf_derived_add_str(d, "severity", k->severity ? tf_complaint_severity_name(k->severity) : "unknown");
    tf_derived_add_int(d, "sla_minutes", sla_ms(r, k->severity) / 60000);
    tf_time_format_rfc3339(k->opened_ms, opened);
    tf_derived_add_str(d, "opened", opened);
    tf_derived_add_int(d, "open_complaints", c->open_complaints);
}

/* A yearly occasion, reminded before_days ahead and once a year (done_year); the
 * occasion is "<label>:<year - label_base>". */
static void fire_yearly(tf_customer_t *c, tf_cause *cause, const char *kind, const char *label, int m, int d,
                        int64_t first_year, int64_t *done_year, int64_t before_days, int64_t label_base, tf_emit *e)
{
    char occasion[48];
    int64_t y = 0;
    int64_t date = next_yearly(m, d, first_year, *done_year, c->clock_ms, before_days, &y);
    *done_year = y;
    snprintf(occasion, sizeof(occasion), "%s:%lld", label, (long long)(y - label_base));
    cause->occasion = occasion;
    tf_lc_care_reminder(c, cause, kind, occasion, date + before_days * TF_MS_PER_DAY, e);
}

/* A one-off follow-up about ref ("<label>:<ref>"), cleared as it fires. */
static void fire_pending(tf_customer_t *c, tf_cause *cause, const char *kind, const char *label, char *ref,
                         int64_t *due_ms, tf_emit *e)
{
    char occasion[TF_REF_MAX + 32];
    snprintf(occasion, sizeof(occasion), "%s:%s", label, ref);
    cause->occasion = occasion;
    ref[0] = '\0';
    *due_ms = 0;
    tf_lc_care_reminder(c, cause, kind, occasion, 0, e);
}

int tf_lc_fire_care(const tf_config_rules *r, tf_customer_t *c, tf_timer t, const char *customer, int64_t due,
                    tf_emit *e)
{
    char occasion[TF_REF_MAX + 48];
    tf_cause cause = {NULL, customer, tf_timer_name(t), NULL, due};
    switch (t) {
    case TF_TIMER_BIRTHDAY:
        fire_yearly(c, &cause, "birthday", "birthday", c->birth_month, c->birth_day, 0, &c->birthday_done_year,
                    r->birthday_days_before, 0, e);
        return 0;
    case TF_TIMER_FESTIVAL: {
        const tf_rules_festival *f = next_festival(r, c);
        if (!f)
            return -1;
        c->festival_done_ms = f->day_ms;
        snprintf(occasion, sizeof(occasion), "%s:%lld", f->name, (long long)year_of(f->day_ms));
        cause.occasion = occasion;
        tf_lc_care_reminder(c, &cause, "festival", occasion, f->day_ms, e);
        return 0;
    }
    case TF_TIMER_ANNIVERSARY: {
        int64_t fy;
        int fm, fd;
        tf_civil_from_days(tf_lc_day_floor(c->first_purchase_ms) / TF_MS_PER_DAY, &fy, &fm, &fd);
        fire_yearly(c, &cause, "anniversary", "first_purchase", fm, fd, fy + 1, &c->anniversary_done_year,
                    r->anniversary_days_before, fy, e);
        return 0;
    }
    case TF_TIMER_DATE:
        fire_yearly(c, &cause, "date", "date", c->date_month, c->date_day, c->date_year, &c->date_done_year,
                    r->anniversary_days_before, 0, e);
        return 0;
    case TF_TIMER_FOLLOWUP:
        fire_pending(c, &cause, "post_purchase", "order", c->followup_order, &c->followup_due_ms, e);
        return 0;
    case TF_TIMER_CHECKIN: {
        int64_t since = (due - c->last_seen_ms) / TF_MS_PER_DAY;
        c->checkin_done_ms = due;
        char date_text[16], name[32];
        tf_lc_format_date(due, date_text);
        snprintf(name, sizeof(name), "checkin:%s", date_text);
        cause.occasion = name;
        size_t at = e->n;
        tf_lc_care_reminder(c, &cause, "key_checkin", name, 0, e);
        if (e->n > at)
            tf_derived_add_int(&e->out[at], "days_without_contact", since);
        return 0;
    }
    case TF_TIMER_COMPLAINT_FOLLOWUP: {
        tf_complaint_t *k = next_complaint_followup(c);
        if (!k)
            return -1;
        /* The occasion names the complaint: two follow-ups due at one time get
         * their own ids. */
        snprintf(occasion, sizeof(occasion), "complaint:%s", k->id);
        cause.occasion = occasion;
        k->followup_due_ms = 0;
        tf_lc_care_reminder(c, &cause, "complaint_followup", occasion, 0, e);
        return 0;
    }
    case TF_TIMER_SLA: {
        int64_t at = 0;
        tf_complaint_t *k = next_escalation(r, c, &at);
        if (!k)
            return -1;
        snprintf(occasion, sizeof(occasion), "%s:%d", k->id, k->level + 1);
        cause.occasion = occasion;
        escalate(r, c, k, &cause, e);
        return 0;
    }
    default:
        return -1;
    }
}
