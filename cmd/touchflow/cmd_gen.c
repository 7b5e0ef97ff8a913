/* `touchflow gen`: synthetic touchpoints, valid per EVENTS.md, for load tests, benches
 * and demos.
 *
 * The kinds follow a fixed mix close to what a retail brand sees (mostly web visits,
 * e-mail and purchases; a few complaints, refunds, referrals); customers "c-<k>" are
 * drawn uniformly from --customers; refunds name a recent purchase and complaint
 * updates a recent complaint, of the same customer. Event times advance by one second
 * on average from --start-time (default: now minus one second per event) and never
 * pass the time the run started. For a given seed, start time and count the output is
 * the same, byte for byte, whatever the destination; ids are "g<seed>-<n>", so two
 * runs with one seed repeat their ids (touchflowd drops the repeats as duplicates).
 *
 * Speed matters more than elsewhere in the CLI (a bench preloads 200,000 events and
 * more): the JSON is written with snprintf into one buffer per event, not built as a
 * Jansson tree, and Kafka gets large batches. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <librdkafka/rdkafka.h>

#include "cli.h"

#define EVENT_MAX 2048                      /* longest event written, with room to spare */
#define RING 4096                           /* recent purchases / complaints remembered */
#define COUNT_MAX INT64_C(1000000000)
#define RATE_MAX INT64_C(10000000)
#define DURATION_MAX (INT64_C(86400) * 7)
#define CUSTOMERS_MAX INT64_C(1000000000)
#define STEP_MS 1000                        /* mean advance of the event time */
#define FLUSH_TIMEOUT_MS 60000
#define OUT_CHUNK (1 << 20)                 /* file output is written in chunks of this */
#define MAX_REPORTED 5

typedef struct {
    int64_t count;        /* events to write */
    int64_t rate;         /* events per second; 0: as fast as possible */
    int64_t customers;
    uint64_t seed;
    int64_t start_ms;     /* first event time; -1: now minus one second per event */
    const char *topic;    /* Kafka; else path or stdout */
    const char *path;     /* NULL or "-": stdout */
} gen_opts;

/* ---- the generator: pure, deterministic for (seed, start time, count) ---- */

/* What is remembered of a recent purchase or complaint, for refunds and updates. */
typedef struct {
    uint64_t customer;
    uint64_t n;           /* the event that created it: its id is built from n */
    int64_t amount;
} recent;

typedef struct {
    uint64_t s[4];        /* xoshiro256** state */
    uint64_t seed, customers;
    int64_t t_ms, end_ms, step_ms;
    recent purchases[RING], complaints[RING];
    uint64_t npurchases, ncomplaints;
} gen_t;

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static uint64_t next_u64(gen_t *g)
{
    uint64_t *s = g->s, r = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return r;
}

/* Uniform in [0, n), n > 0 (Lemire's multiply-shift; the tiny bias is irrelevant here). */
static uint64_t below(gen_t *g, uint64_t n)
{
    return (uint64_t)(((unsigned __int128)next_u64(g) * n) >> 64);
}

static int64_t between(gen_t *g, int64_t lo, int64_t hi) { return lo + (int64_t)below(g, (uint64_t)(hi - lo + 1)); }

static int chance(gen_t *g, unsigned per_mille) { return below(g, 1000) < per_mille; }

static const char *pick(gen_t *g, const char *const *names, size_t n) { return names[below(g, n)]; }
#define PICK(g, arr) pick((g), (arr), sizeof(arr) / sizeof((arr)[0]))

/* Picks by weight: weights sum to total. */
static size_t weighted(gen_t *g, const unsigned *weights, size_t n, unsigned total)
{
    uint64_t r = below(g, total);
    for (size_t i = 0; i < n; i++) {
        if (r < weights[i])
            return i;
        r -= weights[i];
    }
    return n - 1;
}

static void gen_init(gen_t *g, uint64_t seed, uint64_t customers, int64_t start_ms, int64_t end_ms, int64_t count)
{
    uint64_t x = seed;
    memset(g, 0, sizeof(*g));
    for (int i = 0; i < 4; i++)
        g->s[i] = splitmix64(&x);
    g->seed = seed;
    g->customers = customers;
    g->t_ms = start_ms;
    g->end_ms = end_ms;
    /* One second per event on average, less when the span to now is shorter. */
    g->step_ms = count > 0 && (end_ms - start_ms) / count < STEP_MS ? (end_ms - start_ms) / count : STEP_MS;
}

typedef enum {
    K_WEB_VISIT, K_EMAIL, K_PURCHASE, K_CALL, K_SOCIAL, K_STORE_VISIT, K_SURVEY, K_COMPLAINT,
    K_COMPLAINT_UPDATE, K_REFUND, K_PROFILE, K_REFERRAL, K_EVENT_ATTENDANCE, K_CONTRACT_END, K_UNSUBSCRIBE,
    K__COUNT
} kind;

/* Per 2000 events: web_visit 35%, email 15%, purchase 15%, call 8%, social 8%,
 * store_visit 5%, survey 4%, complaint 3%, complaint_update 3%, refund 1%, profile 1%,
 * referral 1%, event_attendance 0.5%, contract_end 0.25%, unsubscribe 0.25%. */
static const unsigned kind_weights[K__COUNT] = {700, 300, 300, 160, 160, 100, 80, 60, 60, 20, 20, 20, 10, 5, 5};
#define KIND_TOTAL 2000

static const struct {
    const char *type, *source;
} kinds[K__COUNT] = {
    [K_WEB_VISIT] = {"web_visit", "/web/shop-cn"},
    [K_EMAIL] = {"email", "/marketing/email"},
    [K_PURCHASE] = {"purchase", "/shop/orders"},
    [K_CALL] = {"call", "/callcenter"},
    [K_SOCIAL] = {"social", "/social/listening"},
    [K_STORE_VISIT] = {"store_visit", "/stores/pos"},
    [K_SURVEY] = {"survey", "/crm/surveys"},
    [K_COMPLAINT] = {"complaint", "/crm/service"},
    [K_COMPLAINT_UPDATE] = {"complaint_update", "/crm/service"},
    [K_REFUND] = {"refund", "/shop/orders"},
    [K_PROFILE] = {"profile", "/crm/profile"},
    [K_REFERRAL] = {"referral", "/crm/referrals"},
    [K_EVENT_ATTENDANCE] = {"event_attendance", "/events"},
    [K_CONTRACT_END] = {"contract_end", "/crm/contracts"},
    [K_UNSUBSCRIBE] = {"unsubscribe", "/crm/consent"},
};

static const char *const pages[] = {"/", "/tea/longjing", "/tea/pu-erh", "/tea/oolong", "/tea/jasmine",
                                    "/teaware/gaiwan", "/teaware/yixing-pot", "/gifts", "/cart", "/account",
                                    "/blog/brewing-guide", "/stores", "/members"};
static const char *const campaigns[] = {"spring-harvest", "mid-autumn-gifts", "singles-day", "new-members",
                                        "winback-q2", "tea-festival"};
static const char *const referrers[] = {"search", "wechat", "weibo", "newsletter", "direct", "partner"};
static const char *const web_channels[] = {"web", "web", "web", "app", "app", "mini_program"};
static const char *const shop_channels[] = {"web", "web", "app", "app", "mini_program", "store"};
static const char *const platforms[] = {"wechat", "weibo", "douyin", "xiaohongshu", "bilibili"};
static const char *const social_actions[] = {"like", "like", "like", "comment", "share", "message", "follow"};
static const char *const categories[] = {"quality", "contract", "shipping", "shipping", "service", "service"};
static const char *const complaint_channels[] = {"phone", "email", "web", "store", "wechat"};
static const char *const complaint_texts[] = {"Parcel arrived late", "Tea tasted stale", "Lid of the pot was chipped",
                                              "Charged twice", "Nobody called back", "Wrong item delivered"};
static const char *const refund_reasons[] = {"damaged", "wrong_item", "not_as_described", "changed_mind"};
static const char *const leave_reasons[] = {"moved away", "too many messages", "price", "switched brand",
                                            "contract expired"};
static const char *const tags[] = {"tea-lover", "gift-buyer", "teaware", "vip-event", "wholesale", "student"};
static const char *const formats[] = {"exhibition", "seminar", "webinar", "visit"};

/* Appends to buf at *len; the buffer is sized for the longest event, so a cut-off
 * write cannot happen (checked by the caller through the returned length). */
__attribute__((format(printf, 4, 5))) static void add(char *buf, size_t size, size_t *len, const char *fmt, ...)
{
    va_list ap;
    int n;
    if (*len >= size)
        return;
    va_start(ap, fmt);
    n = vsnprintf(buf + *len, size - *len, fmt, ap);
    va_end(ap);
    *len += n < 0 ? size : (size_t)n;
}

/* A purchase's items, 1-3 lines from a catalogue of 240 SKUs with fixed prices;
 * returns the order amount (their sum). */
static int64_t add_items(gen_t *g, char *buf, size_t size, size_t *len)
{
    int lines = (int)between(g, 1, 3);
    int64_t amount = 0;
    add(buf, size, len, ",\"items\":[");
    for (int i = 0; i < lines; i++) {
        int sku = (int)below(g, 240);
        int64_t qty = chance(g, 800) ? 1 : between(g, 2, 4);
        int64_t price = 990 + (int64_t)((sku * 7919) % 60) * 500;  /* 9.90 to 304.90 */
        amount += qty * price;
        add(buf, size, len, "%s{\"sku\":\"sku-%03d\",\"qty\":%lld,\"price\":%lld}", i ? "," : "", sku,
            (long long)qty, (long long)price);
    }
    add(buf, size, len, "]");
    return amount;
}

/* Writes event n (1-based) into buf; returns its length (0 if it did not fit, which
 * EVENT_MAX rules out). The subject's offset and length in buf are the record key. */
static size_t gen_event(gen_t *g, uint64_t n, char *buf, size_t size, size_t *key_off, size_t *key_len,
                        int *purchase)
{
    kind k = (kind)weighted(g, kind_weights, K__COUNT, KIND_TOTAL);
    uint64_t customer = below(g, g->customers) + 1;
    char when[TF_TIME_RFC3339_LEN];
    size_t len = 0;
    const recent *r = NULL;

    /* Follow-ups belong to the customer of what they follow; with nothing to follow
     * yet, a refund is a purchase and an update a complaint. */
    if (k == K_REFUND && g->npurchases == 0)
        k = K_PURCHASE;
    if (k == K_COMPLAINT_UPDATE && g->ncomplaints == 0)
        k = K_COMPLAINT;
    if (k == K_REFUND)
        r = &g->purchases[below(g, g->npurchases < RING ? g->npurchases : RING)];
    if (k == K_COMPLAINT_UPDATE)
        r = &g->complaints[below(g, g->ncomplaints < RING ? g->ncomplaints : RING)];
    if (r)
        customer = r->customer;

    g->t_ms += (int64_t)below(g, 2 * (uint64_t)g->step_ms + 1);
    if (g->t_ms > g->end_ms)
        g->t_ms = g->end_ms;
    tf_time_format_rfc3339(g->t_ms, when);

    add(buf, size, &len,
        "{\"specversion\":\"1.0\",\"id\":\"g%llu-%llu\",\"source\":\"%s\",\"type\":\"touchpoint.%s\",\"subject\":\"",
        (unsigned long long)g->seed, (unsigned long long)n, kinds[k].source, kinds[k].type);
    *key_off = len;
    add(buf, size, &len, "c-%llu", (unsigned long long)customer);
    *key_len = len - *key_off;
    add(buf, size, &len, "\",\"time\":\"%s\",\"data\":{", when);
    *purchase = k == K_PURCHASE;

    switch (k) {
    case K_WEB_VISIT:
        add(buf, size, &len, "\"channel\":\"%s\",\"page\":\"%s\",\"duration_s\":%lld", PICK(g, web_channels),
            PICK(g, pages), (long long)between(g, 3, 900));
        if (chance(g, 200))
            add(buf, size, &len, ",\"campaign\":\"%s\"", PICK(g, campaigns));
        if (chance(g, 300))
            add(buf, size, &len, ",\"referrer\":\"%s\"", PICK(g, referrers));
        break;
    case K_EMAIL: {
        uint64_t a = below(g, 10);
        add(buf, size, &len, "\"action\":\"%s\",\"campaign\":\"%s\"", a < 6 ? "open" : a < 9 ? "click" : "bounce",
            PICK(g, campaigns));
        break;
    }
    case K_PURCHASE: {
        int64_t amount, margin;
        size_t at;
        /* The items come first in the draw but after the totals in the text. */
        char items[512];
        size_t ilen = 0;
        amount = add_items(g, items, sizeof(items), &ilen);
        margin = chance(g, 30) ? -amount * between(g, 1, 10) / 100 : amount * between(g, 15, 45) / 100;
        add(buf, size, &len, "\"order_id\":\"o-g%llu-%llu\",\"amount\":%lld,\"currency\":\"CNY\",\"margin\":%lld,"
            "\"channel\":\"%s\"", (unsigned long long)g->seed, (unsigned long long)n, (long long)amount,
            (long long)margin, PICK(g, shop_channels));
        at = len;
        add(buf, size, &len, "%.*s", (int)ilen, items);
        if (len - at != ilen)
            return 0;
        g->purchases[g->npurchases++ % RING] = (recent){customer, n, amount};
        break;
    }
    case K_CALL: {
        int inbound = chance(g, 600);
        uint64_t o = below(g, 10);
        const char *outcome = o < 7 ? "answered" : o < 9 ? "missed" : "voicemail";
        int64_t dur = o < 7 ? between(g, 30, 1800) : o < 9 ? 0 : between(g, 10, 90);
        add(buf, size, &len, "\"direction\":\"%s\",\"duration_s\":%lld,\"outcome\":\"%s\",\"agent\":\"agent-%02d\"",
            inbound ? "inbound" : "outbound", (long long)dur, outcome, (int)between(g, 1, 40));
        break;
    }
    case K_SOCIAL:
        add(buf, size, &len, "\"action\":\"%s\",\"platform\":\"%s\"", PICK(g, social_actions), PICK(g, platforms));
        break;
    case K_STORE_VISIT:
        add(buf, size, &len, "\"store_id\":\"store-%02d\"", (int)between(g, 1, 40));
        break;
    case K_SURVEY: {
        uint64_t v = below(g, 10);
        if (v < 5) {
            add(buf, size, &len, "\"nps\":%d", (int)between(g, 0, 10));
        } else {
            int e = (int)between(g, 4, 10), p = (int)between(g, 2, 10);
            add(buf, size, &len, "\"expectation\":%d,\"perception\":%d", e, p);
            if (v >= 8)
                add(buf, size, &len, ",\"nps\":%d", (int)between(g, 0, 10));
        }
        break;
    }
    case K_COMPLAINT: {
        uint64_t s = below(g, 100);
        add(buf, size, &len, "\"complaint_id\":\"k-g%llu-%llu\",\"category\":\"%s\",\"severity\":\"%s\","
            "\"channel\":\"%s\",\"text\":\"%s\"", (unsigned long long)g->seed, (unsigned long long)n,
            PICK(g, categories), s < 40 ? "low" : s < 75 ? "medium" : s < 95 ? "high" : "critical",
            PICK(g, complaint_channels), PICK(g, complaint_texts));
        g->complaints[g->ncomplaints++ % RING] = (recent){customer, n, 0};
        break;
    }
    case K_COMPLAINT_UPDATE: {
        uint64_t s = below(g, 10);
        add(buf, size, &len, "\"complaint_id\":\"k-g%llu-%llu\",\"status\":\"%s\"", (unsigned long long)g->seed,
            (unsigned long long)r->n, s < 5 ? "acknowledged" : s < 9 ? "resolved" : "reopened");
        break;
    }
    case K_REFUND: {
        int64_t amount = chance(g, 700) ? r->amount : r->amount * between(g, 10, 90) / 100;
        add(buf, size, &len, "\"order_id\":\"o-g%llu-%llu\",\"amount\":%lld,\"currency\":\"CNY\",\"reason\":\"%s\"",
            (unsigned long long)g->seed, (unsigned long long)r->n, (long long)amount, PICK(g, refund_reasons));
        break;
    }
    case K_PROFILE: {
        /* The same customer always has the same birthday. */
        uint64_t h = tf_hash64(&customer, sizeof(customer), g->seed);
        int month = (int)(h % 12) + 1, day = (int)(h / 12 % 28) + 1, year = 1950 + (int)(h / 336 % 56);
        if (h >> 60 < 4)
            add(buf, size, &len, "\"birthday\":\"%02d-%02d\"", month, day);
        else
            add(buf, size, &len, "\"birthday\":\"%04d-%02d-%02d\"", year, month, day);
        if (chance(g, 300))
            add(buf, size, &len, ",\"anniversary\":\"%04d-%02d-%02d\"", (int)between(g, 2015, 2025),
                (int)between(g, 1, 12), (int)between(g, 1, 28));
        add(buf, size, &len, ",\"name\":\"Customer %llu\",\"tags\":[\"%s\"],\"consent\":{\"email\":%s,\"sms\":%s,"
            "\"phone\":%s}", (unsigned long long)customer, PICK(g, tags), chance(g, 800) ? "true" : "false",
            chance(g, 400) ? "true" : "false", chance(g, 300) ? "true" : "false");
        break;
    }
    case K_REFERRAL: {
        /* Anyone but the referrer (with a single customer: one outside the range). */
        uint64_t referred = g->customers > 1 ? below(g, g->customers - 1) + 1 : customer + 1;
        if (g->customers > 1 && referred >= customer)
            referred++;
        add(buf, size, &len, "\"referred_id\":\"c-%llu\"", (unsigned long long)referred);
        break;
    }
    case K_EVENT_ATTENDANCE:
        add(buf, size, &len, "\"event_id\":\"ev-%03d\",\"format\":\"%s\"", (int)between(g, 1, 120), PICK(g, formats));
        break;
    case K_CONTRACT_END:
    case K_UNSUBSCRIBE:
        add(buf, size, &len, "\"reason\":\"%s\"", PICK(g, leave_reasons));
        break;
    case K__COUNT:
        break;
    }
    add(buf, size, &len, "}}");
    return len < size ? len : 0;
}

/* ---- output ---- */

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
    (void)sig;
    interrupted = 1;
}

/* Touched by the delivery and error callbacks, which run inside rd_kafka_poll() and
 * rd_kafka_flush() on the main thread. */
typedef struct {
    tf_cli_kafka_status ks; /* first: the shared Kafka callbacks find it through the opaque */
    int64_t queued, delivered, failed;
    size_t reported;
    rd_kafka_resp_err_t first_err;
} gen_state;

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    gen_state *st = opaque;
    (void)rk;
    if (!m->err) {
        st->delivered++;
        return;
    }
    st->failed++;
    if (!st->first_err)
        st->first_err = m->err;
    if (st->reported++ < MAX_REPORTED)
        tf_cli_errorf("gen: not delivered: %s", rd_kafka_err2str(m->err));
}

/* Returns a producer, or NULL after printing why: tuned for throughput, or with
 * --rate (a paced load, what a latency bench sends) sending each event at once: a
 * record's timestamp is taken when it is produced, and 20 ms of lingering in this
 * process would be counted as the consumer's latency. Kafka properties given in
 * the config (kafka.producer) still override both. */
static rd_kafka_t *producer_new(const tf_config_t *cfg, gen_state *st, int paced)
{
    static const char *const ours[][2] = {
        {"client.id", "touchflow-gen"},
        {"enable.idempotence", "true"},
        {"batch.num.messages", "10000"},
        {"queue.buffering.max.messages", "1000000"},
        /* Same key -> partition mapping as the Java clients that feed touchflow. */
        {"partitioner", "murmur2_random"},
    };
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    int bad = 0;

    for (size_t i = 0; i < sizeof(ours) / sizeof(ours[0]); i++)
        bad |= tf_cli_kafka_set(conf, "", ours[i][0], ours[i][1]);
    bad |= tf_cli_kafka_set(conf, "", "linger.ms", paced ? "0" : "20");
    bad |= tf_cli_kafka_passthrough(conf, cfg, RD_KAFKA_PRODUCER);
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    return tf_cli_kafka_new(RD_KAFKA_PRODUCER, conf, bad, cfg, st, "gen");
}

/* Connects and learns the topic's partitions before the clock starts: otherwise the
 * first events wait in the local queue for the broker connection, the metadata and
 * the idempotent producer id, and a latency bench measures that start-up instead of
 * the consumer. A failure is only logged: the deliveries then fail and say why. */
static void producer_warm_up(rd_kafka_t *rk, const char *topic)
{
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    rd_kafka_resp_err_t err;
    if (!rkt)
        return;
    err = rd_kafka_metadata(rk, 0, rkt, &md, 10000);
    if (err)
        TF_WARN("gen", "no metadata for %s yet: %s", topic, rd_kafka_err2str(err));
    else
        rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
}

/* Queues one event; returns 0, or -1 when it cannot be queued (counted as failed). */
static int produce_event(rd_kafka_t *rk, gen_state *st, const char *topic, const char *buf, size_t len,
                         size_t key_off, size_t key_len)
{
    for (;;) {
        rd_kafka_headers_t *hdrs = rd_kafka_headers_new(1);
        rd_kafka_resp_err_t err;
        rd_kafka_header_add(hdrs, "content-type", -1, "application/cloudevents+json", -1);
        err = rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                RD_KAFKA_V_KEY(buf + key_off, key_len), RD_KAFKA_V_VALUE((void *)buf, len),
                                RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_END);
        if (!err) {
            st->queued++;
            return 0;
        }
        rd_kafka_headers_destroy(hdrs);  /* taken only on success */
        /* A full local queue drains as deliveries complete. */
        if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL && !interrupted && !st->ks.fatal) {
            rd_kafka_poll(rk, 10);
            continue;
        }
        st->failed++;
        if (!st->first_err)
            st->first_err = err;
        if (st->reported++ < MAX_REPORTED)
            tf_cli_errorf("gen: cannot produce: %s", rd_kafka_err2str(err));
        return -1;
    }
}

/* Token bucket for --rate: holds at most a tenth of a second of events, so a stall
 * is not followed by a burst larger than that. */
typedef struct {
    double tokens, cap, per_us;
    int64_t last_us;
} bucket;

static void bucket_init(bucket *b, int64_t rate)
{
    b->per_us = (double)rate / 1e6;
    b->cap = rate / 10 > 1 ? (double)(rate / 10) : 1.0;
    b->tokens = 1.0;
    b->last_us = tf_time_mono_us();
}

/* Microseconds to wait before the next event may go; 0 takes its token. */
static int64_t bucket_take(bucket *b)
{
    int64_t now = tf_time_mono_us();
    b->tokens += (double)(now - b->last_us) * b->per_us;
    if (b->tokens > b->cap)
        b->tokens = b->cap;
    b->last_us = now;
    if (b->tokens >= 1.0) {
        b->tokens -= 1.0;
        return 0;
    }
    return (int64_t)((1.0 - b->tokens) / b->per_us) + 1;
}

static void sleep_us(int64_t us)
{
    struct timespec ts = {(time_t)(us / 1000000), (long)(us % 1000000) * 1000};
    nanosleep(&ts, NULL);
}

/* ---- the command ---- */

static int parse_int(const char *opt, const char *s, int64_t min, int64_t max, int64_t *out)
{
    if (tf_parse_i64(s, strlen(s), out) != TF_OK || *out < min || *out > max) {
        tf_cli_errorf("gen: %s: expected an integer between %lld and %lld", opt, (long long)min, (long long)max);
        return -1;
    }
    return 0;
}

/* Parses the command's options into o; TF_CLI_OK, or an exit status to return. */
static int parse_args(int argc, char **argv, gen_opts *o, int *help)
{
    enum { OPT_COUNT = 256, OPT_RATE, OPT_DURATION, OPT_CUSTOMERS, OPT_SEED, OPT_START, OPT_FILE };
    static const struct option longopts[] = {
        {"count", required_argument, NULL, OPT_COUNT},
        {"rate", required_argument, NULL, OPT_RATE},
        {"duration-s", required_argument, NULL, OPT_DURATION},
        {"customers", required_argument, NULL, OPT_CUSTOMERS},
        {"seed", required_argument, NULL, OPT_SEED},
        {"start-time", required_argument, NULL, OPT_START},
        {"topic", required_argument, NULL, 't'},
        {"file", required_argument, NULL, OPT_FILE},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int64_t duration = 0, seed = 1;
    int c, count_given = 0;
    char why[256];

    memset(o, 0, sizeof(*o));
    o->count = 1000;
    o->customers = 50000;
    o->start_ms = -1;
    optind = 0;
    while ((c = getopt_long(argc, argv, ":t:h", longopts, NULL)) != -1) {
        switch (c) {
        case OPT_COUNT:
            if (parse_int("--count", optarg, 1, COUNT_MAX, &o->count))
                return TF_CLI_USAGE;
            count_given = 1;
            break;
        case OPT_RATE:
            if (parse_int("--rate", optarg, 1, RATE_MAX, &o->rate))
                return TF_CLI_USAGE;
            break;
        case OPT_DURATION:
            if (parse_int("--duration-s", optarg, 1, DURATION_MAX, &duration))
                return TF_CLI_USAGE;
            break;
        case OPT_CUSTOMERS:
            if (parse_int("--customers", optarg, 1, CUSTOMERS_MAX, &o->customers))
                return TF_CLI_USAGE;
            break;
        case OPT_SEED:
            if (parse_int("--seed", optarg, 0, INT64_MAX, &seed))
                return TF_CLI_USAGE;
            break;
        case OPT_START:
            if (tf_time_parse_rfc3339(optarg, strlen(optarg), &o->start_ms) != TF_OK || o->start_ms < 0) {
                tf_cli_errorf("gen: --start-time: expected an RFC 3339 time with an offset, e.g. "
                              "2026-03-01T10:00:00Z");
                return TF_CLI_USAGE;
            }
            break;
        case 't':
            if (tf_config_topic_check(optarg, why, sizeof(why)) != TF_OK) {
                tf_cli_errorf("gen: --topic: %s", why);
                return TF_CLI_USAGE;
            }
            o->topic = optarg;
            break;
        case OPT_FILE: o->path = optarg; break;
        case 'h': *help = 1; return TF_CLI_OK;
        default: return tf_cli_bad_option("gen", c, argv);
        }
    }
    if (tf_cli_no_operands("gen", argc, argv))
        return TF_CLI_USAGE;
    if (o->topic && o->path) {
        tf_cli_errorf("gen: --topic and --file exclude each other");
        return TF_CLI_USAGE;
    }
    if (duration && (!o->rate || count_given)) {
        tf_cli_errorf("gen: --duration-s needs --rate and replaces --count (count = rate x duration)");
        return TF_CLI_USAGE;
    }
    if (duration) {
        if (o->rate > COUNT_MAX / duration) {
            tf_cli_errorf("gen: --rate x --duration-s is more than %lld events", (long long)COUNT_MAX);
            return TF_CLI_USAGE;
        }
        o->count = o->rate * duration;
    }
    if (o->path && strcmp(o->path, "-") == 0)
        o->path = NULL;
    o->seed = (uint64_t)seed;
    return TF_CLI_OK;
}

/* Drains the producer: what is still queued after the timeout is purged and counted
 * as failed by its delivery report. */
static void drain(rd_kafka_t *rk)
{
    rd_kafka_flush(rk, FLUSH_TIMEOUT_MS);
    if (rd_kafka_outq_len(rk) > 0) {
        rd_kafka_purge(rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
        rd_kafka_flush(rk, 2000);
    }
}

int tf_cli_cmd_gen(const tf_cli_opts *opts, int argc, char **argv)
{
    gen_opts o;
    gen_state st;
    gen_t *g = NULL;
    tf_config_t *cfg = NULL;
    rd_kafka_t *rk = NULL;
    FILE *out = NULL;
    char *chunk = NULL;                 /* file output: events not written yet */
    size_t used = 0;
    struct sigaction sa, old_int, old_term;
    bucket b = {0};
    int help = 0, rc, write_failed = 0;
    int64_t now_ms, start_ms, t0, n, written = 0, purchases = 0, good;
    double secs;
    const char *dest;

    if ((rc = parse_args(argc, argv, &o, &help)) != TF_CLI_OK || help) {
        if (help)
            tf_cli_usage(stdout);
        return rc;
    }
    now_ms = tf_time_now_ms();
    start_ms = o.start_ms >= 0 ? o.start_ms : now_ms - o.count * STEP_MS;
    if (start_ms > now_ms) {
        tf_cli_errorf("gen: --start-time is in the future; event times never pass now");
        return TF_CLI_USAGE;
    }
    memset(&st, 0, sizeof(st));
    st.ks.cmd = "gen";
    if (!(g = malloc(sizeof(*g))) || !(cfg = malloc(sizeof(*cfg)))) {
        tf_cli_errorf("out of memory");
        rc = TF_CLI_FAIL;
        goto done;
    }
    if (o.topic) {
        if ((rc = tf_cli_config_load(opts, cfg)) != TF_CLI_OK)
            goto done;
        if (!(rk = producer_new(cfg, &st, o.rate > 0))) {
            rc = TF_CLI_USAGE;
            goto done;
        }
        producer_warm_up(rk, o.topic);
        dest = o.topic;
    } else {
        out = o.path ? fopen(o.path, "w") : stdout;
        if (!out) {
            tf_cli_errorf("gen: cannot create %s: %s", o.path, strerror(errno));
            rc = TF_CLI_FAIL;
            goto done;
        }
        if (!(chunk = malloc(OUT_CHUNK))) {
            tf_cli_errorf("out of memory");
            rc = TF_CLI_FAIL;
            goto done;
        }
        dest = o.path ? o.path : "stdout";
    }
    gen_init(g, o.seed, (uint64_t)o.customers, start_ms, now_ms, o.count);

    /* SA_RESETHAND: a second signal kills us, should the final flush hang. */
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESETHAND;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);

    t0 = tf_time_mono_us();
    if (o.rate)
        bucket_init(&b, o.rate);
    for (n = 1; n <= o.count && !interrupted && !st.ks.fatal && !write_failed; n++) {
        char buf[EVENT_MAX];
        size_t len, key_off, key_len;
        int purchase;
        if (o.rate) {
            int64_t wait;
            while ((wait = bucket_take(&b)) > 0 && !interrupted) {
                if (rk)
                    rd_kafka_poll(rk, 0);
                sleep_us(wait);
            }
            if (interrupted)
                break;
        }
        len = gen_event(g, (uint64_t)n, buf, sizeof(buf) - 1, &key_off, &key_len, &purchase);
        if (len == 0) {
            tf_cli_errorf("gen: event %lld does not fit in %d bytes", (long long)n, EVENT_MAX);
            rc = TF_CLI_FAIL;
            break;
        }
        if (rk) {
            if (produce_event(rk, &st, o.topic, buf, len, key_off, key_len) != 0)
                continue;
            if ((n & 1023) == 0)
                rd_kafka_poll(rk, 0);  /* serve delivery reports as we go */
        } else {
            /* Whole chunks, not one stdio call per event. */
            if (used + len + 1 > OUT_CHUNK) {
                write_failed = fwrite(chunk, 1, used, out) != used;
                used = 0;
            }
            memcpy(chunk + used, buf, len);
            used += len;
            chunk[used++] = '\n';
        }
        written++;
        purchases += purchase;
    }
    if (rk)
        drain(rk);
    else if ((used && fwrite(chunk, 1, used, out) != used) || fflush(out) != 0 || ferror(out))
        write_failed = 1;
    secs = (double)(tf_time_mono_us() - t0) / 1e6;
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);

    good = rk ? st.delivered : written;
    tf_cli_errorf("generated %lld events (%lld purchases) to %s in %.2f s (%.0f events/s)", (long long)good,
                  (long long)purchases, dest, secs, secs > 0 ? (double)good / secs : 0.0);
    if (rk && st.delivered < written) {
        tf_cli_errorf("gen: %lld not delivered (%s)", (long long)(written - st.delivered),
                      rd_kafka_err2str(st.first_err ? st.first_err : RD_KAFKA_RESP_ERR__TIMED_OUT));
        if (st.ks.last_error[0])
            tf_cli_errorf("last Kafka error: %s", st.ks.last_error);
        rc = TF_CLI_FAIL;
    }
    if (write_failed) {
        tf_cli_errorf("gen: cannot write %s: %s", dest, strerror(errno));
        rc = TF_CLI_FAIL;
    }
    if (interrupted) {
        tf_cli_errorf("gen: interrupted after %lld of %lld events", (long long)written, (long long)o.count);
        rc = TF_CLI_FAIL;
    }
    if (st.ks.fatal)
        rc = TF_CLI_FAIL;
done:
    if (rk)
        rd_kafka_destroy(rk);
    if (out && out != stdout && fclose(out) != 0 && rc == TF_CLI_OK) {
        tf_cli_errorf("gen: cannot write %s: %s", o.path, strerror(errno));
        rc = TF_CLI_FAIL;
    }
    free(chunk);
    free(cfg);
    free(g);
    return rc;
}
