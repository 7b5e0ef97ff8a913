#!/usr/bin/env python3
"""Dumps every customer hash under a key prefix as one JSON object {customer: {field: value}}.

A tiny RESP client, so the end-to-end tests need nothing beyond python3.
usage: redis_state.py REDIS_URL PREFIX
"""
import json
import socket
import sys
from urllib.parse import urlparse


class Redis:
    def __init__(self, url):
        u = urlparse(url)
        self.sock = socket.create_connection((u.hostname or "127.0.0.1", u.port or 6379), timeout=10)
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


def main():
    url, prefix = sys.argv[1], sys.argv[2]
    r = Redis(url)
    cursor, keys = "0", []
    while True:
        cursor, batch = r.call("SCAN", cursor, "MATCH", prefix + "c:{*}", "COUNT", 1000)
        keys += [k for k in batch if k.endswith("}")]
        if cursor == "0":
            break
    state = {}
    for k in keys:
        flat = r.call("HGETALL", k)
        customer = k[len(prefix) + 3:-1]
        state[customer] = dict(zip(flat[::2], flat[1::2]))
    json.dump(state, sys.stdout)


if __name__ == "__main__":
    main()
