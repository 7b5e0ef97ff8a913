/* The output vocabularies a subscription filter names: stages, tiers and care
 * kinds as derived events spell them (EVENTS.md). The lifecycle writes the same
 * words; a unit test (test_route.c) keeps the two in step. */
#include <string.h>

#include "event/event.h"

static const char *const stages[] = {"prospect", "growth", "mature", "decline", "churned"};
/* "none": a customer before its first tier, as tier figures say. */
static const char *const tiers[] = {"none", "temporary", "regular", "potential", "key"};
static const char *const care_kinds[] = {
    "welcome", "post_purchase", "birthday", "festival", "anniversary", "date", "key_checkin", "complaint_followup",
    "replenishment",
};

static const struct {
    const char *const *names;
    int n;
} vocabs[TF_VOCAB__COUNT] = {
    {stages, (int)(sizeof stages / sizeof stages[0])},
    {tiers, (int)(sizeof tiers / sizeof tiers[0])},
    {care_kinds, (int)(sizeof care_kinds / sizeof care_kinds[0])},
};

int tf_vocab_count(tf_vocab v)
{
    return (unsigned)v < TF_VOCAB__COUNT ? vocabs[v].n : 0;
}

const char *tf_vocab_name(tf_vocab v, int i)
{
    if ((unsigned)v >= TF_VOCAB__COUNT || i < 0 || i >= vocabs[v].n)
        return NULL;
    return vocabs[v].names[i];
}

int tf_vocab_index(tf_vocab v, const char *name, size_t len)
{
    if ((unsigned)v >= TF_VOCAB__COUNT || !name)
        return -1;
    for (int i = 0; i < vocabs[v].n; i++)
        if (strlen(vocabs[v].names[i]) == len && memcmp(vocabs[v].names[i], name, len) == 0)
            return i;
    return -1;
}
