#!/usr/bin/env python3
"""Dumps every customer hash under a key prefix as one JSON object {customer: {field: value}}.

A tiny RESP client, so the end-to-end tests need nothing beyond python3.
usage: redis_state.py REDIS_URL PREFIX
REDIS_URL is redis://host:port or redis+cluster://host:port[,host:port...]; on a
cluster every primary is scanned. Customer ids come back unescaped from the hash tag
('\\\\' and '\\)' stand for '\\' and '}').
"""
import json
import socket
import sys
from urllib.parse import urlparse


class Redis:
    def __init__(self, host, port=None):
        """Redis(host, port), or Redis(url) for a redis:// URL (the tests import it so)."""
        if port is None:
            u = urlparse(host)
            host, port = u.hostname or "127.0.0.1", u.port or 6379
        self.sock = socket.create_connection((host, port), timeout=10)
        self.buf = self.sock.makefile("rb")

    def call(self, *args):
        out = b"*%d\r\n" % len(args)
        for a in args:
            a = a if isinstance(a, bytes) else str(a).encode()
            out += b"$%d\r\n%s\r\n" % (len(a), a)
        self.sock.sendall(out)
        return self.read()

    def read(self):
        line = self.buf.readline()[:-2]
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            raise RuntimeError(rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            if n < 0:
                return None
            data = self.buf.read(n + 2)[:-2]
            return data.decode()
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self.read() for _ in range(n)]
        raise RuntimeError("bad reply %r" % line)


def unescape(tag):
    out, i = [], 0
    while i < len(tag):
        if tag[i] == "\\" and i + 1 < len(tag):
            out.append("}" if tag[i + 1] == ")" else tag[i + 1])
            i += 2
        else:
            out.append(tag[i])
            i += 1
    return "".join(out)


def primaries(url):
    """The nodes to scan: the one server, or every primary of the cluster."""
    cluster = url.startswith("redis+cluster://")
    seeds = url.split("://", 1)[1].split("@")[-1].split("/")[0].split(",")
    first = urlparse("redis://" + seeds[0])
    host, port = first.hostname or "127.0.0.1", first.port or 6379
    if not cluster:
        return [Redis(host, port)]
    nodes = set()
    for slot in Redis(host, port).call("CLUSTER", "SLOTS"):
        nodes.add((slot[2][0] or host, int(slot[2][1])))
    return [Redis(h, p) for h, p in sorted(nodes)]


def main():
    url, prefix = sys.argv[1], sys.argv[2]
    state = {}
    for r in primaries(url):
        cursor, keys = "0", []
        while True:
            cursor, batch = r.call("SCAN", cursor, "MATCH", prefix + "c:{*}", "COUNT", 1000)
            keys += [k for k in batch if k.endswith("}")]
            if cursor == "0":
                break
        for k in keys:
            flat = r.call("HGETALL", k)
            customer = unescape(k[len(prefix) + 3:-1])
            state[customer] = dict(zip(flat[::2], flat[1::2]))
    json.dump(state, sys.stdout)


if __name__ == "__main__":
    main()
