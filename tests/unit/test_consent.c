/* Unit tests for pkg/lifecycle: consent per channel and the channels a trigger may
 * use, tags, exits (unsubscribe is not churn, rules.exit.kinds), a prospect's exit
 * without win-back, one follow-up per resolved complaint, and the context every
 * derived event carries (ctx and the figures stage, tier, level, value, channels). */
#include "lifecycle_harness.h"

#define EMAIL (1u << TF_CHANNEL_EMAIL)
#define SMS (1u << TF_CHANNEL_SMS)
#define PHONE (1u << TF_CHANNEL_PHONE)
#define ALL (EMAIL | SMS | PHONE)

/* A profile stating consent per channel (TF_CONSENT_UNSTATED leaves one out). */
static void consent(harness *h, int64_t t, tf_consent email, tf_consent sms, tf_consent phone)
{
    tf_event_t ev = ev_new(h, TF_KIND_PROFILE, t);
    ev.consent[TF_CHANNEL_EMAIL] = email;
    ev.consent[TF_CHANNEL_SMS] = sms;
    ev.consent[TF_CHANNEL_PHONE] = phone;
    step(h, &ev);
}

/* An unsubscribe as the decoder leaves it: channel "" withdraws every channel. */
static void unsubscribe(harness *h, int64_t t, const char *channel)
{
    tf_event_t ev = ev_new(h, TF_KIND_UNSUBSCRIBE, t);
    tf_channel ch;
    snprintf(ev.channel, sizeof ev.channel, "%s", channel);
    for (int i = 0; i < TF_CHANNEL__COUNT; i++)
        if (!channel[0] || (tf_channel_parse(channel, strlen(channel), &ch) == TF_OK && ch == (tf_channel)i))
            ev.consent[i] = TF_CONSENT_WITHDRAWN;
    step(h, &ev);
}

static void tags(harness *h, int64_t t, const char *const *list, size_t n)
{
    tf_event_t ev = ev_new(h, TF_KIND_PROFILE, t);
    ev.has_tags = 1;
    ev.ntags = n;
    for (size_t i = 0; i < n; i++)
        snprintf(ev.tags[i], sizeof ev.tags[i], "%s", list[i]);
    step(h, &ev);
}

/* The context of d: ctx and the figures agree, and say what the customer is. */
static void context_is(const harness *h, const tf_derived_t *d, uint32_t channels)
{
    static const char *const names[] = {"email", "sms", "phone"};
    char want[32] = "";
    for (int i = 0; i < TF_CHANNEL__COUNT; i++)
        if (channels & (1u << i))
            snprintf(want + strlen(want), sizeof want - strlen(want), "%s%s", want[0] ? "," : "", names[i]);
    assert_int_equal(d->ctx.channels, channels);
    assert_string_equal(fig_s(d, "channels"), want);
    assert_int_equal(fig(d, "channels")->kind, TF_FIG_LIST);
    assert_int_equal(d->ctx.segment, -1);
    assert_true(d->ctx.segments == 0);
    if (d->type == TF_DERIVED_REFERRAL_CREDITED)
        return;
    assert_string_equal(d->ctx.stage, tf_stage_name(h->c.stage));
    assert_string_equal(d->ctx.tier, tf_tier_name(h->c.tier));
    assert_string_equal(d->ctx.level, h->c.level);
}

/* ---- which channels a trigger may use (pure) ---- */

static void test_channels_rule(void **state)
{
    (void)state;
    harness *h = h_new();
    tf_customer_t c;
    memset(&c, 0, sizeof c);
    /* Never stated: granted by default (the behaviour before consent was kept). */
    assert_int_equal(tf_customer_channels(&h->r, &c), ALL);
    tf_strlcpy(h->r.consent_unstated, "withdrawn", sizeof h->r.consent_unstated);
    assert_int_equal(tf_customer_channels(&h->r, &c), 0);
    c.consent[TF_CHANNEL_SMS] = TF_CONSENT_GRANTED;
    c.consent[TF_CHANNEL_EMAIL] = TF_CONSENT_WITHDRAWN;
    assert_int_equal(tf_customer_channels(&h->r, &c), SMS);
    tf_strlcpy(h->r.consent_unstated, "granted", sizeof h->r.consent_unstated);
    assert_int_equal(tf_customer_channels(&h->r, &c), SMS | PHONE);
    c.consent[TF_CHANNEL_PHONE] = TF_CONSENT_WITHDRAWN;
    assert_int_equal(tf_customer_channels(&h->r, &c), SMS);
    teardown_h(h);
}

/* A profile's consent is kept per channel with its time; a late, older statement
 * changes nothing; the care reminder that follows names the channels left. */
static void test_consent_profile(void **state)
{
    (void)state;
    harness *h = h_new();
    consent(h, T0, TF_CONSENT_GRANTED, TF_CONSENT_WITHDRAWN, TF_CONSENT_UNSTATED);
    const tf_derived_t *d = CARE(h, "welcome", "welcome", T0);
    context_is(h, d, EMAIL | PHONE);
    assert_string_equal(d->ctx.care_kind, "welcome");
    assert_int_equal(h->c.consent[TF_CHANNEL_EMAIL], TF_CONSENT_GRANTED);
    assert_int_equal(h->c.consent[TF_CHANNEL_SMS], TF_CONSENT_WITHDRAWN);
    assert_int_equal(h->c.consent[TF_CHANNEL_PHONE], TF_CONSENT_UNSTATED);
    assert_int_equal(h->c.consent_at_ms[TF_CHANNEL_SMS], T0);
    assert_int_equal(h->c.consent_at_ms[TF_CHANNEL_PHONE], 0);

    /* Granted again later; then a record from before that arrives late. */
    consent(h, T0 + DAY, TF_CONSENT_UNSTATED, TF_CONSENT_GRANTED, TF_CONSENT_UNSTATED);
    consent(h, T0 + HOUR, TF_CONSENT_WITHDRAWN, TF_CONSENT_WITHDRAWN, TF_CONSENT_UNSTATED);
    assert_int_equal(h->c.consent[TF_CHANNEL_SMS], TF_CONSENT_GRANTED);
    assert_int_equal(h->c.consent_at_ms[TF_CHANNEL_SMS], T0 + DAY);
    /* The email statement of T0 + 1 h is newer than the one kept (T0). */
    assert_int_equal(h->c.consent[TF_CHANNEL_EMAIL], TF_CONSENT_WITHDRAWN);
    assert_int_equal(tf_customer_channels(&h->r, &h->c), SMS | PHONE);
    NOTHING(h);
    teardown_h(h);
}

/* With rules.consent.unstated "withdrawn", only what was granted may be used. */
static void test_consent_unstated_withdrawn(void **state)
{
    (void)state;
    harness *h = h_new();
    tf_strlcpy(h->r.consent_unstated, "withdrawn", sizeof h->r.consent_unstated);
    touch(h, TF_KIND_WEB_VISIT, T0);
    context_is(h, CARE(h, "welcome", "welcome", T0), 0);
    consent(h, T0 + HOUR, TF_CONSENT_UNSTATED, TF_CONSENT_GRANTED, TF_CONSENT_UNSTATED);
    buy(h, T0 + DAY, 1000);
    context_is(h, STAGE(h, "first_purchase", T0 + DAY, "prospect", "growth", "purchase"), SMS);
    teardown_h(h);
}

/* Unsubscribing from one channel withdraws it and is not the end: no churn, no
 * win-back; without a channel every channel is withdrawn, still no churn. */
static void test_unsubscribe_channel(void **state)
{
    (void)state;
    harness *h = h_new();
    buy(h, T0, 1000);
    STAGE(h, "first_purchase", T0, "prospect", "growth", "purchase");
    unsubscribe(h, T0 + HOUR, "email");
    assert_int_equal(h->c.stage, TF_STAGE_GROWTH);
    assert_int_equal(h->c.consent[TF_CHANNEL_EMAIL], TF_CONSENT_WITHDRAWN);
    assert_int_equal(h->c.consent_at_ms[TF_CHANNEL_EMAIL], T0 + HOUR);
    run(h, T0 + 3 * DAY);
    context_is(h, CARE(h, "post_purchase", "order:o-e-1", T0 + 3 * DAY), SMS | PHONE);
    unsubscribe(h, T0 + 4 * DAY, "");
    assert_int_equal(h->c.stage, TF_STAGE_GROWTH);
    assert_int_equal(tf_customer_channels(&h->r, &h->c), 0);
    NOTHING(h);
    assert_int_equal(count(h, TF_DERIVED_WINBACK_OPPORTUNITY, NULL), 0);
    assert_int_equal(h->c.churned_count, 0);
    teardown_h(h);
}

/* contract_end still ends the relationship (explicit_exit) with its win-back. */
static void test_contract_end_churns(void **state)
{
    (void)state;
    harness *h = h_new();
    buy(h, T0, 1000);
    STAGE(h, "first_purchase", T0, "prospect", "growth", "purchase");
    touch(h, TF_KIND_CONTRACT_END, T0 + DAY);
    context_is(h, STAGE(h, "explicit_exit", T0 + DAY, "growth", "churned", "contract_end"), ALL);
    const tf_derived_t *d = NEXT(h, TF_DERIVED_WINBACK_OPPORTUNITY, "explicit_exit", T0 + DAY);
    assert_string_equal(fig_s(d, "cause"), "contract_end");
    assert_string_equal(fig_s(d, "stage"), "churned");
    assert_int_equal(fig_i(d, "value"), tf_customer_value(&h->r, &h->c));
    NOTHING(h);
    teardown_h(h);
}

/* rules.exit.kinds decides which exits churn: unsubscribe added, or none at all. */
static void test_exit_kinds(void **state)
{
    (void)state;
    harness *h = h_new();
    h->r.nexit_kinds = 2;
    tf_strlcpy(h->r.exit_kinds[1], "unsubscribe", sizeof h->r.exit_kinds[1]);
    assert_true(tf_lifecycle_exit_churns(&h->r, TF_KIND_UNSUBSCRIBE));
    assert_true(tf_lifecycle_exit_churns(&h->r, TF_KIND_CONTRACT_END));
    assert_false(tf_lifecycle_exit_churns(&h->r, TF_KIND_PURCHASE));
    buy(h, T0, 1000);
    STAGE(h, "first_purchase", T0, "prospect", "growth", "purchase");
    unsubscribe(h, T0 + HOUR, "sms");
    STAGE(h, "explicit_exit", T0 + HOUR, "growth", "churned", "unsubscribe");
    context_is(h, NEXT(h, TF_DERIVED_WINBACK_OPPORTUNITY, "explicit_exit", T0 + HOUR), EMAIL | PHONE);
    NOTHING(h);
    teardown_h(h);

    h = h_new();
    h->r.nexit_kinds = 0;
    assert_false(tf_lifecycle_exit_churns(&h->r, TF_KIND_CONTRACT_END));
    buy(h, T0, 1000);
    STAGE(h, "first_purchase", T0, "prospect", "growth", "purchase");
    touch(h, TF_KIND_CONTRACT_END, T0 + HOUR);
    NOTHING(h);
    assert_int_equal(h->c.stage, TF_STAGE_GROWTH);
    teardown_h(h);
}

/* A prospect that never bought leaves without a win-back opportunity; buying later
 * is its first purchase, not a win-back. */
static void test_prospect_exit(void **state)
{
    (void)state;
    harness *h = h_new();
    touch(h, TF_KIND_WEB_VISIT, T0);
    CARE(h, "welcome", "welcome", T0);
    touch(h, TF_KIND_CONTRACT_END, T0 + DAY);
    const tf_derived_t *d = STAGE(h, "explicit_exit", T0 + DAY, "prospect", "churned", "contract_end");
    context_is(h, d, ALL);
    assert_null(fig(d, "value")); /* no purchase, no value */
    assert_false(d->ctx.has_value);
    NOTHING(h);
    assert_int_equal(h->c.stage, TF_STAGE_CHURNED);
    assert_int_equal(count(h, TF_DERIVED_WINBACK_OPPORTUNITY, NULL), 0);

    buy(h, T0 + 10 * DAY, 1000);
    STAGE(h, "first_purchase", T0 + 10 * DAY, "churned", "growth", "purchase");
    NOTHING(h);
    assert_int_equal(count(h, TF_DERIVED_WINBACK_SUCCEEDED, NULL), 0);
    teardown_h(h);
}

/* ---- tags ---- */

/* A profile's tags replace the set, an empty list clears it, a late one is ignored. */
static void test_tags(void **state)
{
    (void)state;
    harness *h = h_new();
    const char *const first[] = {"vip", "wechat"};
    const char *const second[] = {"b2b"};
    tags(h, T0, first, 2);
    assert_int_equal(h->c.ntags, 2);
    assert_string_equal(h->c.tags[0], "vip");
    assert_string_equal(h->c.tags[1], "wechat");
    profile(h, T0 + HOUR, 7, 15, 0, 0, 0); /* a profile without tags keeps them */
    assert_int_equal(h->c.ntags, 2);
    tags(h, T0 + DAY, second, 1);
    assert_int_equal(h->c.ntags, 1);
    assert_string_equal(h->c.tags[0], "b2b");
    tags(h, T0 + 2 * HOUR, first, 2); /* late */
    assert_int_equal(h->c.ntags, 1);
    assert_int_equal(h->c.tags_at_ms, T0 + DAY);
    tags(h, T0 + 2 * DAY, NULL, 0);
    assert_int_equal(h->c.ntags, 0);
    teardown_h(h);
}

/* ---- complaint follow-ups, one per resolution ---- */

/* Two complaints resolved an hour apart, the second before the first's follow-up is
 * due: each is followed up at its own resolution + 7 days, with its own id. */
static void test_complaint_followups_each(void **state)
{
    (void)state;
    harness *h = h_new();
    buy(h, T0 - 20 * DAY, 1000);
    complaint(h, T0, "cp-1", TF_SEV_LOW);
    complaint(h, T0 + HOUR, "cp-2", TF_SEV_LOW);
    cupdate(h, T0 + 2 * HOUR, "cp-1", TF_CST_RESOLVED);
    cupdate(h, T0 + 3 * HOUR, "cp-2", TF_CST_RESOLVED);
    assert_int_equal(h->c.due[TF_TIMER_COMPLAINT_FOLLOWUP], T0 + 2 * HOUR + 7 * DAY);
    h->cur = h->n;
    run(h, T0 + 30 * DAY);
    const tf_derived_t *care[8];
    size_t n = take(h, TF_DERIVED_CARE_REMINDER, care, 8), k = 0;
    const tf_derived_t *a = NULL, *b = NULL;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(care[i]->rule, "complaint_followup") != 0)
            continue;
        k++;
        if (strcmp(fig_s(care[i], "occasion"), "complaint:cp-1") == 0)
            a = care[i];
        else if (strcmp(fig_s(care[i], "occasion"), "complaint:cp-2") == 0)
            b = care[i];
    }
    assert_int_equal(k, 2);
    assert_non_null(a);
    assert_non_null(b);
    assert_int_equal(a->time_ms, T0 + 2 * HOUR + 7 * DAY);
    assert_int_equal(b->time_ms, T0 + 3 * HOUR + 7 * DAY);
    assert_string_not_equal(a->id, b->id);
    assert_string_equal(a->ctx.care_kind, "complaint_followup");
    assert_int_equal(h->c.due[TF_TIMER_COMPLAINT_FOLLOWUP], 0);
    teardown_h(h);
}

/* Resolved at the same moment: two follow-ups at one due time, in a fixed order and
 * with distinct ids; a reopened complaint loses only its own follow-up. */
static void test_complaint_followups_same_time(void **state)
{
    (void)state;
    harness *h = h_new();
    touch(h, TF_KIND_WEB_VISIT, T0 - DAY);
    complaint(h, T0, "cp-1", TF_SEV_LOW);
    complaint(h, T0, "cp-2", TF_SEV_LOW);
    complaint(h, T0, "cp-3", TF_SEV_LOW);
    cupdate(h, T0 + HOUR, "cp-1", TF_CST_RESOLVED);
    cupdate(h, T0 + HOUR, "cp-2", TF_CST_RESOLVED);
    cupdate(h, T0 + HOUR, "cp-3", TF_CST_RESOLVED);
    cupdate(h, T0 + 2 * HOUR, "cp-2", TF_CST_REOPENED);
    h->cur = h->n;
    run(h, T0 + HOUR + 7 * DAY);
    /* The reopened complaint escalates on its new SLA clock. */
    NEXT(h, TF_DERIVED_COMPLAINT_ESCALATED, "sla_deadline", T0 + 2 * HOUR + 3 * DAY);
    NEXT(h, TF_DERIVED_COMPLAINT_ESCALATED, "sla_twice_deadline", T0 + 2 * HOUR + 6 * DAY);
    const tf_derived_t *a = CARE(h, "complaint_followup", "complaint:cp-1", T0 + HOUR + 7 * DAY);
    const tf_derived_t *b = CARE(h, "complaint_followup", "complaint:cp-3", T0 + HOUR + 7 * DAY);
    assert_string_not_equal(a->id, b->id);
    context_is(h, b, ALL);
    assert_string_equal(fig_s(b, "stage"), "prospect");
    NOTHING(h);
    teardown_h(h);
}

/* ---- context on every derived type ---- */

/* The context of d, a derived event of a customer who withdrew sms: in ctx and
 * figures, never a figure twice. */
static void context_of_story(const tf_derived_t *d)
{
    /* ctx as the rules left the customer at that point: check the parts that do
     * not depend on it, and that the figures equal ctx. */
    assert_int_equal(d->ctx.segment, -1);
    for (size_t j = 0; j < d->nfigures; j++)
        for (size_t k = j + 1; k < d->nfigures; k++)
            assert_string_not_equal(d->figures[j].name, d->figures[k].name);
    if (d->type == TF_DERIVED_REFERRAL_CREDITED) {
        /* The referrer's consent is not at hand: channels as for a customer who
         * stated none (granted by default). */
        assert_true(d->ctx.channels == ALL);
        assert_string_equal(fig_s(d, "channels"), "email,sms,phone");
        assert_null(fig(d, "stage"));
        assert_string_equal(d->ctx.stage, "");
        assert_null(fig(d, "preferred_channel"));
        return;
    }
    assert_true(d->ctx.channels == (EMAIL | PHONE));
    assert_string_equal(fig_s(d, "channels"), "email,phone");
    assert_string_equal(fig_s(d, "stage"), d->ctx.stage);
    assert_true(d->ctx.stage[0] != '\0');
    assert_string_equal(fig_s(d, "tier"), d->ctx.tier);
    assert_true(d->ctx.has_value);
    assert_int_equal(fig_i(d, "value"), d->ctx.value);
    /* complaint.escalated's own "level" is the escalation level (1 or 2). */
    if (d->type == TF_DERIVED_COMPLAINT_ESCALATED)
        assert_true(fig_i(d, "level") == 1 || fig_i(d, "level") == 2);
    else
        assert_string_equal(fig_s(d, "level"), d->ctx.level);
    assert_true(d->ctx.level[0] != '\0');
    if (d->type == TF_DERIVED_CARE_REMINDER)
        assert_string_equal(d->ctx.care_kind, d->rule);
    else
        assert_string_equal(d->ctx.care_kind, "");
    assert_true(d->nfigures <= TF_DERIVED_MAX_FIGURES - 1); /* room for "segments" */
    /* The preferred channel, when known, in both. */
    if (d->ctx.preferred_channel[0])
        assert_string_equal(fig_s(d, "preferred_channel"), d->ctx.preferred_channel);
    else
        assert_null(fig(d, "preferred_channel"));
}

/* Stories that fire every type of derived event the rules have (not the segment
 * types, which segment rules fire): each carries its context. */
static void test_context_every_type(void **state)
{
    (void)state;
    harness *h = h_new();
    h_population(h, 1000, 5000, 4000, 2000, 1500);
    tf_strlcpy(h->c.referred_by, "r-9", sizeof h->c.referred_by);
    consent(h, T0 - DAY, TF_CONSENT_UNSTATED, TF_CONSENT_WITHDRAWN, TF_CONSENT_UNSTATED);
    size_t from = h->n; /* the welcome came before any purchase */
    int seen[TF_DERIVED__COUNT] = {0};

    buy_m(h, T0, 300000, 10000);            /* stage, referral, tier (key), level */
    complaint(h, T0 + DAY, "cp-1", TF_SEV_CRITICAL);
    run(h, T0 + DAY + 5 * HOUR);          /* escalations */
    cupdate(h, T0 + 2 * DAY, "cp-1", TF_CST_RESOLVED);
    run(h, T0 + 200 * DAY);               /* care, decline, warning, churn, win-back */
    buy(h, T0 + 210 * DAY, 250000);       /* win-back success, warning cleared, gold */
    for (size_t i = from; i < h->n; i++) {
        seen[h->log[i].type]++;
        context_of_story(&h->log[i]);
    }

    /* A rhythm of purchases through the app, then silence: replenishment and
     * purchase.overdue, with the preferred channel. */
    harness *g = h_new();
    h_rhythm(g);
    consent(g, T0 - DAY, TF_CONSENT_UNSTATED, TF_CONSENT_WITHDRAWN, TF_CONSENT_UNSTATED);
    from = g->n;
    for (int k = 0; k < 3; k++) {
        tf_event_t ev = ev_buy(g, T0 + k * 10 * DAY, 20000, NO_MARGIN, "CNY");
        snprintf(ev.channel, sizeof ev.channel, "app");
        step(g, &ev);
    }
    run(g, T0 + 60 * DAY);
    for (size_t i = from; i < g->n; i++) {
        seen[g->log[i].type]++;
        context_of_story(&g->log[i]);
        assert_string_equal(g->log[i].ctx.preferred_channel, "app");
    }
    teardown_h(g);
    for (int t = 0; t < TF_DERIVED__COUNT; t++) {
        if (t == TF_DERIVED_SEGMENT_ENTERED || t == TF_DERIVED_SEGMENT_EXITED)
            continue;
        if (!seen[t]) {
            dump(h);
            fail_msg("no %s in the story", tf_derived_type_name((tf_derived_type)t));
        }
    }
    teardown_h(h);
}

/* The figures of the fullest stage change still leave room for "segments". */
static void test_context_figures_fit(void **state)
{
    (void)state;
    harness *h = h_new();
    for (int i = 0; i < 6; i++)
        buy(h, T0 + i * 10 * DAY, 100000);
    h->cur = h->n;
    run(h, T0 + 400 * DAY);
    for (size_t i = 0; i < h->n; i++) {
        assert_true(h->log[i].nfigures < TF_DERIVED_MAX_FIGURES);
        assert_non_null(fig(&h->log[i], "channels"));
    }
    assert_true(count(h, TF_DERIVED_STAGE_CHANGED, "inactivity") + count(h, TF_DERIVED_STAGE_CHANGED, "churn_risk") +
                    count(h, TF_DERIVED_STAGE_CHANGED, "spend_decline") >
                0);
    teardown_h(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_channels_rule, free_all),
        cmocka_unit_test_teardown(test_consent_profile, free_all),
        cmocka_unit_test_teardown(test_consent_unstated_withdrawn, free_all),
        cmocka_unit_test_teardown(test_unsubscribe_channel, free_all),
        cmocka_unit_test_teardown(test_contract_end_churns, free_all),
        cmocka_unit_test_teardown(test_exit_kinds, free_all),
        cmocka_unit_test_teardown(test_prospect_exit, free_all),
        cmocka_unit_test_teardown(test_tags, free_all),
        cmocka_unit_test_teardown(test_complaint_followups_each, free_all),
        cmocka_unit_test_teardown(test_complaint_followups_same_time, free_all),
        cmocka_unit_test_teardown(test_context_every_type, free_all),
        cmocka_unit_test_teardown(test_context_figures_fit, free_all),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
