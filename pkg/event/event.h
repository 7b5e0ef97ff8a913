/* event: the public event contract (EVENTS.md) in C.
 *
 * Decodes and validates CloudEvents 1.0 touchpoints (structured JSON or binary mode
 * with ce_ headers) into a plain, fixed-size tf_event_t, and encodes derived events
 * (tf_derived_t) as structured CloudEvents. Decoding parses with a per-thread parser
 * whose buffers grow to the largest record seen on the thread and are kept, so it
 * allocates nothing once warm; a tf_event_t owns no heap memory. */
#ifndef TF_EVENT_H
#define TF_EVENT_H

#include <stddef.h>
#include <stdint.h>

#include "core/core.h"

#define TF_EVENT_ID_MAX 128
#define TF_EVENT_SOURCE_MAX 256
#define TF_EVENT_SUBJECT_MAX 128
/* Longest kind-specific identifier kept (order_id, complaint_id, referred_id...). */
#define TF_EVENT_REF_MAX 128
#define TF_EVENT_SHORT_MAX 64

typedef enum {
    TF_KIND_WEB_VISIT = 0,
    TF_KIND_CALL,
    TF_KIND_PURCHASE,
    TF_KIND_REFUND,
    TF_KIND_COMPLAINT,
    TF_KIND_COMPLAINT_UPDATE,
    TF_KIND_SURVEY,
    TF_KIND_REFERRAL,
    TF_KIND_PROFILE,
    TF_KIND_EMAIL,
    TF_KIND_SOCIAL,
    TF_KIND_STORE_VISIT,
    TF_KIND_EVENT_ATTENDANCE,
    TF_KIND_CONTRACT_END,
    TF_KIND_UNSUBSCRIBE,
    TF_KIND__COUNT
} tf_event_kind;

/* "web_visit", "call", ... (without the "touchpoint." prefix); NULL when out of range. */
const char *tf_event_kind_name(tf_event_kind kind);
/* Looks up a kind by name (without prefix); 0 or TF_ENOTFOUND. */
int tf_event_kind_parse(const char *name, size_t len, tf_event_kind *out);

/* Dead-letter error codes, exactly those of EVENTS.md. */
typedef enum {
    TF_EV_OK = 0,
    TF_EV_TOO_LARGE,
    TF_EV_INVALID_UTF8,
    TF_EV_INVALID_JSON,
    TF_EV_NOT_AN_OBJECT,
    TF_EV_TOO_DEEP,
    TF_EV_UNSUPPORTED_SPECVERSION,
    TF_EV_MISSING_FIELD,
    TF_EV_INVALID_FIELD,
    TF_EV_UNKNOWN_TYPE,
    TF_EV_INVALID_SUBJECT,
    TF_EV_INVALID_TIME,
    TF_EV_TIME_OUT_OF_RANGE,
    /* Not the record's fault: set by the pipeline. */
    TF_EV_STATE_ERROR,   /* the customer's stored state cannot be read or written */
    TF_EV_KEY_MISMATCH,  /* the record key is not the subject */
    TF_EV__COUNT
} tf_event_error;

/* "too_large", "invalid_utf8", ... as written to the tf-error-code header. */
const char *tf_event_error_code(tf_event_error err);

typedef struct {
    size_t max_record_bytes;   /* whole record value; default 65536 */
    size_t max_id_bytes;       /* id attribute; default 128, never above TF_EVENT_ID_MAX */
    int max_depth;             /* JSON nesting; default 16 */
    int64_t max_future_skew_ms;/* how far in the future time may be; default 24 h */
    int64_t max_amount;        /* largest amount or |margin| in minor units; default 10^12 */
} tf_event_limits;

void tf_event_limits_default(tf_event_limits *lim);

/* A Kafka header as the consumer sees it (borrowed pointers). */
typedef struct {
    const char *name;
    const void *value;
    size_t value_len;
} tf_event_header;

/* Enumerations of data fields; 0 always means "absent". */
typedef enum { TF_DIR_NONE = 0, TF_DIR_INBOUND, TF_DIR_OUTBOUND } tf_call_direction;
typedef enum { TF_CAT_NONE = 0, TF_CAT_QUALITY, TF_CAT_CONTRACT, TF_CAT_SHIPPING, TF_CAT_SERVICE } tf_complaint_category;
typedef enum { TF_SEV_NONE = 0, TF_SEV_LOW, TF_SEV_MEDIUM, TF_SEV_HIGH, TF_SEV_CRITICAL } tf_complaint_severity;
typedef enum { TF_CST_NONE = 0, TF_CST_ACKNOWLEDGED, TF_CST_RESOLVED, TF_CST_REOPENED } tf_complaint_status;

const char *tf_complaint_category_name(tf_complaint_category c);
const char *tf_complaint_severity_name(tf_complaint_severity s);

/* The channels a customer can consent to (profile data.consent) and a trigger may
 * use. */
typedef enum { TF_CHANNEL_EMAIL = 0, TF_CHANNEL_SMS, TF_CHANNEL_PHONE, TF_CHANNEL__COUNT } tf_channel;
/* "email", "sms", "phone"; NULL when out of range. */
const char *tf_channel_name(tf_channel c);
/* 0 or TF_ENOTFOUND. */
int tf_channel_parse(const char *name, size_t len, tf_channel *out);

/* Consent to one channel as a profile or an unsubscribe states it; 0 is "not stated". */
typedef enum { TF_CONSENT_UNSTATED = 0, TF_CONSENT_GRANTED, TF_CONSENT_WITHDRAWN } tf_consent;
/* "unstated", "granted", "withdrawn"; NULL when out of range. */
const char *tf_consent_name(tf_consent c);

/* profile data.tags: at most this many tags of 1 to TF_EVENT_TAG_MAX bytes each
 * (EVENTS.md); more or longer is invalid_field. */
#define TF_EVENT_MAX_TAGS 16
#define TF_EVENT_TAG_MAX 32

/* purchase data.items: the first TF_EVENT_MAX_ITEMS items that name a sku and
 * bought something (qty absent counts 1, qty 0 is left out) are kept; the sku cut
 * to TF_EVENT_SKU_MAX bytes at a character boundary, as notes are. Anything else
 * the array holds is validated and not kept, so every valid record stays valid. */
#define TF_EVENT_MAX_ITEMS 16
#define TF_EVENT_SKU_MAX 40

typedef struct {
    char sku[TF_EVENT_SKU_MAX + 1];
    int64_t qty;                   /* >= 1 */
} tf_event_item;

/* A validated touchpoint. Strings are NUL-terminated copies; fields that the kind
 * does not carry are zero / empty. */
typedef struct {
    tf_event_kind kind;
    char id[TF_EVENT_ID_MAX + 1];
    char source[TF_EVENT_SOURCE_MAX + 1];
    char subject[TF_EVENT_SUBJECT_MAX + 1];
    int64_t time_ms;

    /* purchase, refund */
    char order_id[TF_EVENT_REF_MAX + 1];
    int64_t amount;            /* minor units, >= 0 */
    char currency[4];          /* ISO 4217, three capitals */
    int64_t margin;            /* purchase: may be negative */
    int has_margin;
    size_t nitems;             /* purchase: data.items kept, in the order given */
    tf_event_item items[TF_EVENT_MAX_ITEMS];

    /* complaint, complaint_update */
    char complaint_id[TF_EVENT_REF_MAX + 1];
    tf_complaint_category category;
    tf_complaint_severity severity;
    tf_complaint_status status;

    /* survey: has_sat when expectation and perception are both present */
    int has_sat;
    double expectation;        /* 1..10 */
    double perception;         /* 1..10 */
    int nps;                   /* 0..10, or -1 when absent */

    /* referral */
    char referred_id[TF_EVENT_SUBJECT_MAX + 1];

    /* call */
    tf_call_direction direction;
    int64_t duration_s;        /* call, web_visit; -1 when absent */

    /* profile: birthday as month/day (0 when absent), birth year or 0 */
    int birth_month, birth_day, birth_year;
    /* profile: the anniversary date the customer gave (0 when absent) */
    int anniv_year, anniv_month, anniv_day;

    /* profile: has_tags when data.tags was given (an empty array too: it clears
     * the set); tags de-duplicated, in the order given */
    int has_tags;
    size_t ntags;
    char tags[TF_EVENT_MAX_TAGS][TF_EVENT_TAG_MAX + 1];
    /* profile data.consent per channel; unsubscribe: withdrawn for its data.channel,
     * or for every channel without one */
    tf_consent consent[TF_CHANNEL__COUNT];

    /* free-form short labels (channel, email/social action, outcome...) */
    char channel[TF_EVENT_SHORT_MAX + 1];
    char action[TF_EVENT_SHORT_MAX + 1];
    /* web_visit, email: the campaign; refund, contract_end, unsubscribe: the
     * reason. Free text, kept cut to TF_EVENT_SHORT_MAX bytes at a character
     * boundary (longer is valid: the contract never bounded them). */
    char campaign[TF_EVENT_SHORT_MAX + 1];
    char reason[TF_EVENT_SHORT_MAX + 1];
} tf_event_t;

/* Decodes one record. Binary mode is chosen when a "ce_specversion" header is
 * present, structured mode otherwise. now_ms is the wall clock used for the
 * future-skew check (passed in so tests control it).
 *
 * Returns TF_EV_OK and fills *out, or an error code with a human-readable detail
 * naming the field written into detail (always NUL-terminated). */
tf_event_error tf_event_decode(const tf_event_limits *lim,
                               const void *value, size_t value_len,
                               const tf_event_header *headers, size_t nheaders,
                               int64_t now_ms, tf_event_t *out,
                               char *detail, size_t detail_size);

/* ---- derived events (output) ---- */

typedef enum {
    TF_DERIVED_STAGE_CHANGED = 0,
    TF_DERIVED_CHURN_WARNING,
    TF_DERIVED_CHURN_CLEARED,
    TF_DERIVED_CARE_REMINDER,
    TF_DERIVED_COMPLAINT_ESCALATED,
    TF_DERIVED_TIER_CHANGED,
    TF_DERIVED_LOYALTY_LEVEL_CHANGED,
    TF_DERIVED_REFERRAL_CREDITED,
    TF_DERIVED_WINBACK_OPPORTUNITY,
    TF_DERIVED_WINBACK_SUCCEEDED,
    TF_DERIVED_SEGMENT_ENTERED,
    TF_DERIVED_SEGMENT_EXITED,
    TF_DERIVED_PURCHASE_OVERDUE,
    TF_DERIVED__COUNT
} tf_derived_type;

/* "touchflow.lifecycle.stage_changed", ... */
const char *tf_derived_type_name(tf_derived_type t);
/* The family ("lifecycle", "churn", "care", ...), used to pick the output topic. */
const char *tf_derived_family(tf_derived_type t);

/* TF_FIG_LIST: str holds comma-separated names, encoded as a JSON array of strings.
 * TF_FIG_ITEMS: str holds i strings back to back, each with its NUL, encoded as a
 * JSON array of them: for values that may hold a comma (SKUs). */
typedef enum { TF_FIG_INT = 1, TF_FIG_NUM, TF_FIG_STR, TF_FIG_LIST, TF_FIG_ITEMS } tf_figure_kind;

#define TF_FIG_NAME_MAX 32
#define TF_FIG_STR_MAX (TF_EVENT_REF_MAX + 8) /* room for any id the contract allows */
#define TF_DERIVED_MAX_FIGURES 16

/* One named figure in a derived event's data. */
typedef struct {
    char name[TF_FIG_NAME_MAX];
    tf_figure_kind kind;
    int64_t i;
    double num;
    char str[TF_FIG_STR_MAX];
} tf_figure;

#define TF_DERIVED_CTX_NAME_MAX 32

/* What a subscription's filter reads of a derived event without parsing it: the
 * customer as the rules left it when the event fired. The rules fill it (and
 * write the same facts into data as figures); routing reads only this. */
typedef struct {
    char stage[TF_DERIVED_CTX_NAME_MAX];     /* stage name, "" when not known */
    char tier[TF_DERIVED_CTX_NAME_MAX];      /* tier name, "" when not known */
    char level[TF_DERIVED_CTX_NAME_MAX];     /* member level, "" before the first */
    char care_kind[TF_DERIVED_CTX_NAME_MAX]; /* care.reminder's kind, else "" */
    int64_t value;                           /* lifetime profit, when has_value */
    int has_value;
    uint32_t channels;                       /* bit (1u << tf_channel): channels the trigger may use */
    uint64_t segments;                       /* bit i: member of the i-th configured segment */
    int segment;                             /* segment.entered/exited: the segment's index, else -1 */
    char preferred_channel[TF_EVENT_SHORT_MAX + 1]; /* learned from purchases and answers, "" when not known */
} tf_derived_ctx;

/* A derived event as the rules produce it. Plain data; owns no heap memory.
 * data is encoded as {"rule":rule, <figures...>} in order. */
typedef struct {
    tf_derived_type type;
    char id[TF_ID_LEN];                       /* deterministic, see tf_derived_set_id */
    char subject[TF_EVENT_SUBJECT_MAX + 1];   /* customer id, also the record key */
    int64_t time_ms;
    char rule[TF_FIG_NAME_MAX];
    size_t nfigures;
    tf_figure figures[TF_DERIVED_MAX_FIGURES];
    tf_derived_ctx ctx;
} tf_derived_t;

/* Appends a figure; TF_EINVAL when full or the name/string does not fit. */
int tf_derived_add_int(tf_derived_t *d, const char *name, int64_t v);
int tf_derived_add_num(tf_derived_t *d, const char *name, double v);
int tf_derived_add_str(tf_derived_t *d, const char *name, const char *v);
int tf_derived_add_list(tf_derived_t *d, const char *name, const char *comma_separated);
/* A TF_FIG_ITEMS figure of items[0..n) (borrowed, copied); TF_EINVAL as above, or
 * when they do not fit together in TF_FIG_STR_MAX bytes (with their NULs). */
int tf_derived_add_items(tf_derived_t *d, const char *name, const char *const *items, size_t n);

/* Sets d->id to tf_id_derive(cause_source, cause_id, type name): the same cause
 * always yields the same id, so subscribers can dedup. */
void tf_derived_set_id(tf_derived_t *d, const char *cause_source, const char *cause_id);

/* Encodes d as a structured CloudEvent JSON object into buf. Returns the length
 * written (excluding the NUL), or TF_EINVAL when buf is too small. */
int tf_derived_encode(const tf_derived_t *d, const char *instance_source, char *buf, size_t bufsize);

/* The context attributes of an encoded derived event (the output of
 * tf_derived_encode, unescaped) and where its data object lies in it: what the
 * CloudEvents Kafka binding puts in headers, and the value of binary mode. */
typedef struct {
    char id[TF_ID_LEN];
    char source[256];
    char type[64];
    char subject[TF_EVENT_SUBJECT_MAX + 1];
    char time[TF_TIME_RFC3339_LEN];
    size_t data_off, data_len;
} tf_derived_attrs;

/* Reads json[0..len) as tf_derived_encode writes it. TF_EINVAL for anything else. */
int tf_derived_attrs_parse(const char *json, size_t len, tf_derived_attrs *out);

/* ---- output vocabularies (what a subscription filter names) ---- */

/* The names derived events carry for a customer's stage, tier and a care
 * reminder's kind (EVENTS.md). Indexes are positions in these lists, not the
 * lifecycle's enums: a filter keeps them as bits. */
typedef enum { TF_VOCAB_STAGE = 0, TF_VOCAB_TIER, TF_VOCAB_CARE_KIND, TF_VOCAB__COUNT } tf_vocab;
/* How many names vocabulary v has (at most 32). */
int tf_vocab_count(tf_vocab v);
/* The i-th name of v, or NULL past the end. */
const char *tf_vocab_name(tf_vocab v, int i);
/* The index of name[0..len) in v, or -1. */
int tf_vocab_index(tf_vocab v, const char *name, size_t len);

#endif
