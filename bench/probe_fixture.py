#!/usr/bin/env python3
"""Fixture for bench/probe.sh: N loopback HTTP listeners (some slow) plus closed ports, and an
nginx.conf with one proxy_pass per target. Runs until killed (SIGTERM).
  probe_fixture.py DIR N SLOW_EVERY DEAD_EVERY SLOW_SECONDS READ_TIMEOUT"""
import socket, sys, threading, time, selectors, os

out, n, slow_every, dead_every, slow_s, read_timeout = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5]), sys.argv[6]
sel = selectors.DefaultSelector()
listeners, targets = [], []
for i in range(n):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    if i % dead_every == 0:
        pass  # a dead backend: bound (the port stays ours) but not listening, so it refuses
    else:
        s.listen(128)
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ, (i % slow_every == 0))
        listeners.append(s)
    targets.append(port)

with open(os.path.join(out, "nginx.conf"), "w") as f:
    f.write("events {}\nhttp {\n  proxy_read_timeout %s;\n  proxy_connect_timeout 2s;\n  server {\n    listen 8080;\n" % read_timeout)
    for i, p in enumerate(targets):
        f.write("    location /t%d { proxy_pass http://127.0.0.1:%d; }\n" % (i, p))
    f.write("  }\n}\n")
with open(os.path.join(out, "ready"), "w") as f:
    f.write("%d targets\n" % n)

def answer(c, slow):
    try:
        c.settimeout(10)
        c.recv(4096)
        if slow:
            time.sleep(slow_s)
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
    except OSError:
        pass
    finally:
        c.close()

while True:
    for key, _ in sel.select():
        try:
            c, _ = key.fileobj.accept()
        except OSError:
            continue
        threading.Thread(target=answer, args=(c, key.data), daemon=True).start()
