/* The derived events this process is delivering (internal to pkg/pipeline).
 *
 * Every derived event is committed to the customer's outbox before it is sent, and
 * a visit re-sends what it finds there: the cure for a crash or a lost reply. But a
 * visit that loads while an earlier batch of the same customer is still being
 * delivered, or whose load went out before the outbox ack, would find events this
 * process owns and send them twice. So an id is held here from the moment it is
 * handed to Kafka until Redis has answered the HDEL that removes its entry; a visit
 * leaves held ids alone. Acks are answered in the order they were sent (one
 * connection; a dropped connection answers every pending one, as failed), so a
 * count of answered acks says which are settled without a list of them. */
#ifndef TF_PIPELINE_INFLIGHT_H
#define TF_PIPELINE_INFLIGHT_H

#include <stddef.h>
#include <stdint.h>

#include "core/core.h"

typedef struct {
    char id[TF_ID_LEN]; /* "" = free */
    uint64_t ack;       /* 0 while being delivered, else the ack that removes it */
} tf_inflight_entry;

typedef struct {
    tf_inflight_entry *slots; /* open addressing, linear probing */
    size_t cap, len;
    uint64_t acks_sent, acks_answered;
} tf_inflight_t;

/* Holds id: handed to Kafka. TF_ENOMEM leaves it out (only a duplicate risk). */
int tf_inflight_add(tf_inflight_t *f, const char *id);
/* Delivered; its outbox entry goes with the next ack: call tf_inflight_ack_sent
 * once the ack is on its way, or tf_inflight_remove if it could not be sent. */
void tf_inflight_delivered(tf_inflight_t *f, const char *id);
/* The ack that carries every id delivered since the last one is sent. */
void tf_inflight_ack_sent(tf_inflight_t *f);
/* An ack was answered, well or not (in send order). */
void tf_inflight_ack_answered(tf_inflight_t *f);
void tf_inflight_remove(tf_inflight_t *f, const char *id);
/* Being delivered, or delivered with its ack unanswered: a loaded outbox entry
 * with this id is not to be sent again. */
int tf_inflight_holds(tf_inflight_t *f, const char *id);
size_t tf_inflight_count(const tf_inflight_t *f);
void tf_inflight_free(tf_inflight_t *f);

#endif
