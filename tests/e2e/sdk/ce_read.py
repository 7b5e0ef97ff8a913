#!/usr/bin/env python3
"""Reads output topics from the beginning and decodes every record with the
CloudEvents Python SDK's Kafka binding (cloudevents.core.bindings.kafka).

    ce_read.py --brokers HOST:PORT --expect N [--idle-ms MS] [--timeout-ms MS] TOPIC...

Prints one JSON line per event: topic, partition, offset, key, mode, id, type,
subject, source, time (UTC, milliseconds), data. Exits 1 naming every record the SDK
did not decode, or when the count is not N.

The content mode is chosen as the Kafka protocol binding says: structured when the
content-type header starts with "application/cloudevents", binary otherwise. The
SDK's own from_kafka() is not used: it picks binary whenever any ce_ header is
present, which would misread structured records that carry ce_* router headers.
"""
import argparse
import json
import sys
import time
import uuid
from datetime import timezone

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition
from cloudevents.core.bindings import kafka as ce_kafka
from cloudevents.core.formats.json import JSONFormat

STRUCTURED_PREFIX = "application/cloudevents"


def utc_ms(t):
    t = t.astimezone(timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (t.microsecond // 1000)


def decode(msg, fmt):
    """One Kafka record -> (mode, CloudEvent); raises with the reason."""
    headers = {}
    for name, value in msg.headers() or []:
        # The binding maps each attribute to one header; a repeated one is ambiguous.
        if name.lower() in headers:
            raise ValueError("header %r appears twice" % name)
        headers[name.lower()] = value if value is not None else b""
    ctype = headers.get("content-type", b"").decode("utf-8")
    kmsg = ce_kafka.KafkaMessage(headers=headers, key=msg.key(), value=msg.value() or b"")
    if ctype.startswith(STRUCTURED_PREFIX):
        if not ctype.startswith(STRUCTURED_PREFIX + "+json"):
            raise ValueError("structured format %r is not JSON" % ctype)
        ev = ce_kafka.from_structured(kmsg, fmt)
        # The SDK's auto-detecting reader takes any ce_ header for binary mode: a
        # structured record must read the same through it.
        if ce_kafka.from_kafka(kmsg, fmt).get_attributes() != ev.get_attributes():
            raise ValueError("from_kafka reads the structured record differently")
        return "structured", ev
    # The SDK defaults a missing specversion to 1.0; the binding requires the header.
    if "ce_specversion" not in headers:
        raise ValueError("binary mode (content-type %r) without a ce_specversion header" % ctype)
    ev = ce_kafka.from_binary(kmsg, fmt)
    # read_data() falls back to a plain string when a JSON body does not parse.
    if isinstance(ev.get_data(), (str, bytes)):
        raise ValueError("data is not JSON although content-type is %r" % ctype)
    return "binary", ev


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--brokers", required=True)
    ap.add_argument("--expect", type=int, required=True)
    ap.add_argument("--idle-ms", type=int, default=2000)
    ap.add_argument("--timeout-ms", type=int, default=60000)
    ap.add_argument("topics", nargs="+")
    args = ap.parse_args()

    # A throwaway group: offsets are never committed, partitions are assigned by hand.
    c = Consumer({"bootstrap.servers": args.brokers, "group.id": "ce-sdk-py." + uuid.uuid4().hex,
                  "enable.auto.commit": False, "enable.partition.eof": False})
    md = c.list_topics(timeout=10)
    parts = []
    for t in args.topics:
        tm = md.topics.get(t)
        if tm is None or tm.error is not None:
            sys.exit("ce_read.py: topic %s not found" % t)
        parts += [TopicPartition(t, p, OFFSET_BEGINNING) for p in tm.partitions]
    c.assign(parts)

    fmt = JSONFormat()
    n, bad = 0, []
    deadline = time.monotonic() + args.timeout_ms / 1000
    last = time.monotonic()
    while time.monotonic() < deadline:
        # Idle: stop once nothing came for idle-ms after the expected count.
        if n + len(bad) >= args.expect and time.monotonic() - last > args.idle_ms / 1000:
            break
        msg = c.poll(0.2)
        if msg is None:
            continue
        if msg.error():
            if msg.error().code() != KafkaError._PARTITION_EOF:
                sys.exit("ce_read.py: consumer error: %s" % msg.error())
            continue
        last = time.monotonic()
        where = "%s/%d@%d (key %r)" % (msg.topic(), msg.partition(), msg.offset(), msg.key())
        try:
            mode, ev = decode(msg, fmt)
        except Exception as e:  # noqa: BLE001 - any SDK error names the record
            bad.append("%s: %s: %s" % (where, type(e).__name__, e))
            continue
        n += 1
        print(json.dumps({
            "topic": msg.topic(), "partition": msg.partition(), "offset": msg.offset(),
            "key": msg.key().decode("utf-8") if msg.key() is not None else None, "mode": mode,
            "id": ev.get_id(), "type": ev.get_type(), "subject": ev.get_subject(),
            "source": ev.get_source(),
            "time": utc_ms(ev.get_time()) if ev.get_time() is not None else None,
            "data": ev.get_data(),
        }, sort_keys=True))
    c.close()
    sys.stdout.flush()
    for b in bad[:20]:
        print("ce_read.py: record did not decode: %s" % b, file=sys.stderr)
    if bad:
        print("ce_read.py: %d of %d records did not decode" % (len(bad), n + len(bad)), file=sys.stderr)
        return 1
    if n != args.expect:
        print("ce_read.py: decoded %d records, expected %d" % (n, args.expect), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
