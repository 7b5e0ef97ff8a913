/* Shared internals of pkg/bus. */
#ifndef TF_BUS_INTERNAL_H
#define TF_BUS_INTERNAL_H

#include <unistd.h>

#include <event2/event.h>

#include "bus/bus.h"

int tf_bus_conf_set(rd_kafka_conf_t *conf, const char *key, const char *value, char *err, size_t errsize);
rd_kafka_conf_t *tf_bus_conf_new(const char *brokers, const tf_config_kv *props, size_t nprops, char *err,
                                 size_t errsize);
int tf_bus_queue_watch(struct event_base *base, rd_kafka_queue_t *q, event_callback_fn fn, void *arg,
                       int fds[2], struct event **ev);
void tf_bus_queue_unwatch(rd_kafka_queue_t *q, int fds[2], struct event **ev);
void tf_bus_drain_fd(int fd);

#endif
