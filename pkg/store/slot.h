/* slot: where Redis Cluster puts a key, and the hash tag of a customer's keys.
 *
 * A customer's keys are "<prefix>c:{<tag>}" and "<prefix>c:{<tag>}:outbox", where
 * <tag> is the customer id escaped by tf_store_tag_escape: Redis Cluster hashes
 * only the text between the first '{' and the first '}' after it, so the keys (and
 * the script that touches them together) always share one slot, whatever bytes the
 * id holds.
 *
 * Pure: no I/O, no allocation, no state; safe from any thread. */
#ifndef TF_STORE_SLOT_H
#define TF_STORE_SLOT_H

#include <stddef.h>
#include <stdint.h>

#include "core/core.h"

/* Redis Cluster's number of hash slots. */
#define TF_STORE_SLOTS 16384u

/* CRC16-CCITT (XMODEM: polynomial 0x1021, initial value 0, no reflection, no final
 * xor), the checksum Redis Cluster takes keys' slots from; "123456789" gives 0x31c3.
 * buf may be NULL when len is 0. */
uint16_t tf_store_crc16(const char *buf, size_t len);

/* The Redis Cluster slot (0..16383) of the key key[0..len), as CLUSTER KEYSLOT
 * answers: when the key has a '{' and a '}' after it with at least one byte between
 * the first '{' and the first '}' that follows it, only those bytes are hashed,
 * otherwise the whole key. key may be NULL when len is 0. */
unsigned tf_store_key_slot(const char *key, size_t len);

/* The length (without the terminator) of subject as tf_store_tag_escape writes it;
 * NULL counts as "". */
size_t tf_store_tag_escaped_len(const char *subject);

/* Writes subject (a customer id, NUL-terminated) as the text between the braces of
 * its keys, NUL-terminated, into out (outsize bytes, tf_store_tag_escaped_len + 1
 * suffice): '\' becomes "\\" and '}' becomes "\)", every other byte is kept ('{' does
 * not end a tag).
 *
 * What must stay true, since keys written before are found by it: the escaped text
 * holds no '}', so the tag ends where the id ends; it is empty only for an empty
 * subject (an empty tag would make Redis hash each whole key, scattering a
 * customer's keys over slots); two different subjects never give the same text (a
 * '\' in the output always starts a pair); and a subject without '}' or '\' is
 * written unchanged, so stores that predate the escaping keep their keys.
 *
 * Returns the length written (without the terminator), or TF_EINVAL when an
 * argument is NULL or out is too small (out is then "" when outsize > 0). */
int tf_store_tag_escape(const char *subject, char *out, size_t outsize);

/* Writes the key "<prefix>c:{<escaped subject>}<suffix>" (suffix "" or ":outbox"), NUL-terminated, into out (outsize bytes, tf_store_customer_key_size
 * suffice): the one place that spells a customer's keys. Returns the key's length,
 * or TF_EINVAL when an argument is NULL or out is too small (out is then "" when
 * outsize > 0). */
int tf_store_customer_key(const char *prefix, const char *subject, const char *suffix, char *out,
                          size_t outsize);
/* The bytes tf_store_customer_key needs, terminator included; NULL counts as "". */
size_t tf_store_customer_key_size(const char *prefix, const char *subject, const char *suffix);

/* The slot of a customer's keys, "<prefix>c:{<escaped subject>}" and its ":outbox"
 * companion (both share it), without building the key. Exact for any
 * prefix, also one holding braces (the configuration refuses those, since they
 * would change the tag); for a prefix without braces and a non-empty subject it is
 * tf_store_key_slot of the escaped subject. NULL counts as "". */
unsigned tf_store_customer_slot(const char *prefix, const char *subject);

/* Population figures live beside the customers they count: on a standalone Redis
 * one hash "<prefix>figures"; on a Redis Cluster one hash per slot,
 * "<prefix>figures:{<slot tag>}", so a customer's commit adds to the hash of its
 * own slot, and the figures are the sum of the 16384 hashes. The slot tag of a
 * slot is the first string of the sequence "0".."9","a".."z","10",... (base 36)
 * that hashes to it: a fixed table, so every member and the CLI name the same
 * keys. */
#define TF_STORE_SLOT_TAG_MAX 8
/* Fills tags[slot] for every slot (about 90,000 checksums, once). */
void tf_store_slot_tags(char tags[][TF_STORE_SLOT_TAG_MAX]);
/* Writes "<prefix>figures", or with a tag "<prefix>figures:{<tag>}". Returns the
 * length, or TF_EINVAL when out is too small. */
int tf_store_figures_key(const char *prefix, const char *tag, char *out, size_t outsize);

#endif
