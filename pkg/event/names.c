/* The contract's names (kinds, dead-letter codes, derived types and their families)
 * as tables, one row per enum value, in enum order. The vocabularies of data fields
 * (category, severity, ...) live with their validation in decode.c.
 *
 * The tables are indexed by the enum; the static asserts keep them the same length
 * as the enums, so adding a kind or a derived type without naming it fails to build. */
#include <string.h>

#include "event/event.h"

static const char *const kind_names[] = {
    "web_visit",
    "call",
    "purchase",
    "refund",
    "complaint",
    "complaint_update",
    "survey",
    "referral",
    "profile",
    "email",
    "social",
    "store_visit",
    "event_attendance",
    "contract_end",
    "unsubscribe",
};
_Static_assert(sizeof kind_names / sizeof kind_names[0] == TF_KIND__COUNT, "kind_names");

static const char *const error_codes[] = {
    "ok",
    "too_large",
    "invalid_utf8",
    "invalid_json",
    "not_an_object",
    "too_deep",
    "unsupported_specversion",
    "missing_field",
    "invalid_field",
    "unknown_type",
    "invalid_subject",
    "invalid_time",
    "time_out_of_range",
    "state_error",
    "key_mismatch",
};
_Static_assert(sizeof error_codes / sizeof error_codes[0] == TF_EV__COUNT, "error_codes");

static const struct {
    const char *type;
    const char *family;
} derived_names[] = {
    { "touchflow.lifecycle.stage_changed", "lifecycle" },
    { "touchflow.churn.warning", "churn" },
    { "touchflow.churn.cleared", "churn" },
    { "touchflow.care.reminder", "care" },
    { "touchflow.complaint.escalated", "complaint" },
    { "touchflow.tier.changed", "tier" },
    { "touchflow.loyalty.level_changed", "loyalty" },
    { "touchflow.referral.credited", "referral" },
    { "touchflow.winback.opportunity", "winback" },
    { "touchflow.winback.succeeded", "winback" },
    { "touchflow.segment.entered", "segment" },
    { "touchflow.segment.exited", "segment" },
    { "touchflow.purchase.overdue", "purchase" },
};
_Static_assert(sizeof derived_names / sizeof derived_names[0] == TF_DERIVED__COUNT, "derived_names");

const char *tf_event_kind_name(tf_event_kind kind)
{
    if ((int)kind < 0 || kind >= TF_KIND__COUNT)
        return NULL;
    return kind_names[kind];
}

int tf_event_kind_parse(const char *name, size_t len, tf_event_kind *out)
{
    if (name == NULL || out == NULL)
        return TF_EINVAL;
    /* Fifteen short names: a linear scan with a length check first is as fast as
     * anything cleverer and needs no setup. */
    for (int k = 0; k < TF_KIND__COUNT; k++) {
        const char *n = kind_names[k];
        if (strlen(n) == len && memcmp(n, name, len) == 0) {
            *out = (tf_event_kind)k;
            return TF_OK;
        }
    }
    return TF_ENOTFOUND;
}

const char *tf_event_error_code(tf_event_error err)
{
    if ((int)err < 0 || err >= TF_EV__COUNT)
        return "unknown";
    return error_codes[err];
}

const char *tf_derived_type_name(tf_derived_type t)
{
    if ((int)t < 0 || t >= TF_DERIVED__COUNT)
        return NULL;
    return derived_names[t].type;
}

const char *tf_derived_family(tf_derived_type t)
{
    if ((int)t < 0 || t >= TF_DERIVED__COUNT)
        return NULL;
    return derived_names[t].family;
}

static const char *const channel_names[] = {"email", "sms", "phone"};
_Static_assert(sizeof channel_names / sizeof channel_names[0] == TF_CHANNEL__COUNT, "channel_names");

const char *tf_channel_name(tf_channel c)
{
    return (unsigned)c < TF_CHANNEL__COUNT ? channel_names[c] : NULL;
}

int tf_channel_parse(const char *name, size_t len, tf_channel *out)
{
    for (int i = 0; i < TF_CHANNEL__COUNT; i++)
        if (strlen(channel_names[i]) == len && memcmp(channel_names[i], name, len) == 0) {
            *out = (tf_channel)i;
            return TF_OK;
        }
    return TF_ENOTFOUND;
}

static const char *const consent_names[] = {"unstated", "granted", "withdrawn"};

const char *tf_consent_name(tf_consent c)
{
    return (unsigned)c < sizeof consent_names / sizeof consent_names[0] ? consent_names[c] : NULL;
}
