#!/usr/bin/env python3
"""Seeds fuzz/corpus/<target>/ from the real lines in ../shared/corpus/logs (not committed).

    python3 fuzz/seed_corpus.py [CORPUS_DIR]
"""
import hashlib
import json
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", "..", "shared", "corpus")
LOGS = os.path.join(SRC, "logs")

# Formats with every shape the compiler knows: quoted and unquoted $request, $time_local,
# upstream lists, escape=json.
FORMATS = [
    b"combined",
    b"main",
    b'$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" '
    b'"$http_user_agent" $upstream_addr $upstream_status $upstream_response_time $request_time',
    b"$remote_addr $request $status $upstream_addr $upstream_header_time",
    b'\x01{"t":"$time_iso8601","r":"$request","s":"$status","u":"$upstream_addr"}',
    b"$msec ${host}$request_uri $status",
]
SAMPLES = [
    b'1.2.3.4 - - [26/Oct/2023:00:00:01 +0000] "GET /a HTTP/1.1" 502 5 "-" "curl" '
    b"10.0.0.1:80, 10.0.0.2:80 : unix:/x 502, 502 : 200 0.001, 0.002 : 0.004 0.010",
    b"::1 GET /x HTTP/1.1 503 127.0.0.1:9000 -",
    b'{"t":"2026-11-20T14:32:10+01:00","r":"GET /\\"q\\" HTTP/1.1","s":"504","u":"10.0.0.1:80"}',
    b"1700000000.123 example.com/x 200",
]


def write(target, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, hashlib.sha1(data).hexdigest()), "wb") as f:
        f.write(data)


def main():
    if not os.path.isdir(LOGS):
        sys.exit(f"{LOGS}: not found")
    upstreams = set()
    with open(os.path.join(LOGS, "error-lines.all.jsonl"), encoding="utf-8") as f:
        for rec in f:
            line = json.loads(rec)["line"].encode()
            write("error_log", line)
            m = re.search(rb'upstream: "([^"]*)"', line)
            if m:
                upstreams.add(m.group(1))
    access = []
    for root, _, files in os.walk(LOGS):
        for name in files:
            if "access" not in name and not name.endswith(".log"):
                continue
            with open(os.path.join(root, name), "rb") as f:
                for line in f.read().splitlines():
                    if re.match(rb"\d{4}/\d\d/\d\d ", line):
                        continue
                    access.append(line)
    for line in access[:1500]:
        write("access_log", line)
    for fmt in FORMATS:
        for s in SAMPLES + access[:3]:
            write("access_log", fmt + b"\0" + s)
    for u in upstreams:
        write("upstream", u)
    for u in [b"10.0.0.1:80, 10.0.0.2:80 : unix:/x", b"502, 502 : 200", b"-", b"-, - : 0.004",
              b"http://[::1]:3000/", b"fastcgi://unix:/run/php/php8.2-fpm.sock:", b"grpcs://backend"]:
        write("upstream", u)


main()
