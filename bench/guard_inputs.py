#!/usr/bin/env python3
"""guard_inputs.py - the fixed inputs of the instruction-count guard (bench/guard.sh).

Writes, from a fixed seed and nothing outside this file (a clean clone has no ../shared), into
OUT_DIR:
  error.log    ~10 MB of nginx error log: connect() refused / unreachable, unix sockets that are
               missing or denied, upstream timeouts, too big header, resets, upstream SSL
               handshake and verify errors, no live upstreams, limit_req, resolver failures,
               multi-line FastCGI stderr (PHP stack traces), notices of a reload, noise
  access.log   ~10 MB of access log in combined + `$upstream_addr $upstream_status
               $upstream_response_time $request_time` (retry lists, ` : ` after an internal
               redirect, the group name on no live upstreams, `-` for static, 499, 504 at the
               read timeout, TLS bytes on a plain port escaped as nginx does)
  conf/        nginx.conf and 29 included files: 300 servers, their upstream groups (the same
               peers the logs name), locations with proxy_pass / fastcgi_pass, maps, a geo block

The line shapes follow ../shared/bench/gen_error_log.py and gen_access_log.py, in fewer lines:
the guard needs inputs that exercise the same code, not the benchmark's ground truth.
Same seed => byte-identical files (only `random.Random(seed)` and integer arithmetic).

Usage: python3 bench/guard_inputs.py OUT_DIR [--seed N] [--log-bytes N]
"""
import argparse
import os
import random

MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
SVC = ["api", "app", "auth", "billing", "search", "media", "users", "orders", "cart", "catalog",
       "payments", "notify", "reports", "graphql", "ws", "admin", "cms", "legacy", "inventory",
       "shipping", "pricing", "reco", "images", "upload", "sso", "gateway", "checkout", "feed"]
ENVS = ["prod", "blue", "green", "canary", "v2", "eu", "us", "internal"]
TLD = ["example.com", "example.net", "acme.io", "shopco.de", "foo-bar.co.uk", "my-saas.app"]
RES = ["users", "orders", "products", "items", "cart", "sessions", "search", "invoices",
       "payments", "reports", "events", "comments", "media", "files", "tokens"]
PHP_SOCKS = ["unix:/run/php/php8.2-fpm.sock", "unix:/run/php/php8.1-fpm.sock",
             "unix:/run/php/php7.4-fpm.sock", "unix:/var/run/php-fpm/www.sock"]
APP_SOCKS = ["unix:/run/gunicorn.sock", "unix:/run/puma/app.sock", "unix:/var/run/app/node.sock"]
PHP_PAGES = ["/index.php", "/wp-login.php", "/wp-admin/admin-ajax.php", "/xmlrpc.php", "/wp-cron.php"]
PHP_FILES = ["/var/www/html/index.php", "/var/www/html/wp-includes/class-wpdb.php",
             "/var/www/app/vendor/laravel/framework/src/Illuminate/Database/Connection.php",
             "/srv/shop/src/Controller/CheckoutController.php"]
PHP_ERRORS = [
    "PHP Fatal error:  Uncaught PDOException: SQLSTATE[HY000] [2002] Connection refused in {f}:{n}",
    "PHP Fatal error:  Allowed memory size of 134217728 bytes exhausted (tried to allocate 65536 bytes) in {f} on line {n}",
    "PHP Warning:  Undefined array key \"id\" in {f} on line {n}",
    "PHP Fatal error:  Maximum execution time of 30 seconds exceeded in {f} on line {n}",
]
UAS = ["Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/118.0.0.0 Safari/537.36",
       "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0_3 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1",
       "Mozilla/5.0 (X11; Linux x86_64; rv:109.0) Gecko/20100101 Firefox/118.0",
       "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
       "curl/8.4.0", "python-requests/2.31.0", "Go-http-client/1.1", "kube-probe/1.27", "-"]
TLS_GARBAGE = ["\\x16\\x03\\x01\\x00\\xF1\\x01\\x00\\x00\\xED\\x03\\x03", "\\x05\\x01\\x00", "SSH-2.0-Go"]
# Upstream failures as nginx words them: (level, message, kinds of upstream it can hit).
UPSTREAM_FAILURES = [
    (30, "error", "connect() failed (111: Connection refused) while connecting to upstream", "tcp"),
    (6, "error", "connect() failed (113: No route to host) while connecting to upstream", "tcp"),
    (25, "error", "upstream timed out (110: Connection timed out) while reading response header from upstream", "any"),
    (6, "error", "upstream timed out (110: Connection timed out) while connecting to upstream", "tcp"),
    (8, "error", "upstream sent too big header while reading response header from upstream", "any"),
    (10, "error", "recv() failed (104: Connection reset by peer) while reading response header from upstream", "any"),
    (8, "error", "upstream prematurely closed connection while reading response header from upstream", "any"),
    (4, "error", "SSL_do_handshake() failed (SSL: error:0A00010B:SSL routines::wrong version number) while SSL handshaking to upstream", "tls"),
    (3, "error", "upstream SSL certificate verify error: (10:certificate has expired) while SSL handshaking to upstream", "tls"),
    (8, "crit", "connect() to {peer} failed (2: No such file or directory) while connecting to upstream", "unix"),
    (4, "crit", "connect() to {peer} failed (13: Permission denied) while connecting to upstream", "unix"),
    (4, "error", "connect() to {peer} failed (11: Resource temporarily unavailable) while connecting to upstream", "unix"),
    (4, "warn", "an upstream response is buffered to a temporary file /var/cache/nginx/proxy_temp/3/07/0000012345 while reading upstream", "any"),
    (3, "info", "epoll_wait() reported that client prematurely closed connection, so upstream connection is closed too while reading response header from upstream", "any"),
]


class World:
    """Upstream groups, servers, clients and URIs shared by the logs and the config."""

    def __init__(self, r, servers):
        self.r = r
        self.groups = []
        names = set()
        while len(self.groups) < 110:
            name = "%s_%s" % (r.choice(SVC), r.choice(ENVS))
            if name in names:
                continue
            names.add(name)
            port = r.choice([3000, 5000, 8000, 8080, 8443, 9000])
            net = (r.randint(0, 40), r.randint(0, 255))
            peers = []
            for _ in range(r.choice([1, 2, 2, 3, 3, 4, 5, 6])):
                if r.random() < 0.05:
                    peers.append("[fd00:%x::%x]:%d" % (r.randint(1, 0xffff), r.randint(1, 0xff), port))
                else:
                    peers.append("10.%d.%d.%d:%d" % (net[0], net[1], r.randint(2, 254), port))
            self.groups.append({"name": name, "peers": sorted(set(peers)), "kind": "proxy",
                                "scheme": "https://" if port == 8443 else "http://"})
        for s in APP_SOCKS:
            self.groups.append({"name": None, "peers": [s], "kind": "proxy", "scheme": "http://"})
        for s in PHP_SOCKS + ["127.0.0.1:9000"]:
            self.groups.append({"name": None, "peers": [s], "kind": "fastcgi", "scheme": "fastcgi://"})
        self.servers = []
        while len(self.servers) < servers:
            n = "%s%d.%s" % (r.choice(SVC), r.randint(1, 99), r.choice(TLD))
            if n not in self.servers:
                self.servers.append(n)
        # Each server proxies to one group and, one in three, runs PHP too.
        self.server_group = {s: r.choice(self.groups[:113]) for s in self.servers}
        self.server_php = {s: r.choice(self.groups[113:]) if r.random() < 0.35 else None
                           for s in self.servers}
        self.clients = ["%d.%d.%d.%d" % (r.randint(1, 223), r.randint(0, 255), r.randint(0, 255), r.randint(1, 254))
                        for _ in range(3000)]
        self.clients += ["2a01:%x:%x::%x" % (r.randint(0, 0xffff), r.randint(0, 0xffff), r.randint(1, 0xffff))
                         for _ in range(300)]
        self.uris = []
        for _ in range(2000):
            u = "/api/v%d/%s" % (r.randint(1, 3), r.choice(RES))
            if r.random() < 0.6:
                u += "/%d" % r.randint(1, 999999)
            if r.random() < 0.3:
                u += "?page=%d&per_page=50" % r.randint(1, 200)
            self.uris.append(u)

    def peers(self):
        return sorted({p for g in self.groups for p in g["peers"]})


def error_log(w, r, size):
    out, total = [], 0
    t = 1698278400  # 2023-10-26 00:00:00 UTC
    cid = 1000
    workers = ["%d#%d" % (p, p) for p in range(3101, 3105)]
    fail_w = [f[0] for f in UPSTREAM_FAILURES]
    while total < size:
        t += r.randint(0, 2)
        ts = "%04d/%02d/%02d %02d:%02d:%02d" % (2023, 10, 26 + t // 86400 - 19656, t // 3600 % 24, t // 60 % 60, t % 60)
        cid += r.randint(1, 40)
        worker = r.choice(workers)
        server = r.choice(w.servers)
        client = r.choice(w.clients)
        uri = r.choice(w.uris)
        req = "%s %s HTTP/1.1" % ("GET" if r.random() < 0.8 else "POST", uri)
        x = r.random()
        if x < 0.62:
            _, level, msg, kind = r.choices(UPSTREAM_FAILURES, weights=fail_w)[0]
            if kind == "unix":
                g = r.choice([g for g in w.groups[110:] if g["peers"][0].startswith("unix:")])
            elif kind == "tls":
                g = r.choice([g for g in w.groups if g["scheme"] == "https://"] or w.groups)
            elif kind == "tcp":
                g = r.choice(w.groups[:110])
            else:
                g = w.server_group[server] if r.random() < 0.8 else (w.server_php[server] or r.choice(w.groups))
            peer = r.choice(g["peers"])
            if g["kind"] == "fastcgi":
                req = "GET %s HTTP/1.1" % r.choice(PHP_PAGES)
                up = "fastcgi://" + peer + (":" if peer.startswith("unix:") else "")
            else:
                up = g["scheme"] + peer + (":" if peer.startswith("unix:") else "") + uri
            line = "%s [%s] %s: *%d %s, client: %s, server: %s, request: \"%s\", upstream: \"%s\", host: \"%s\"" % (
                ts, level, worker, cid, msg.replace("{peer}", peer), client, server, req, up, server)
            if len(g["peers"]) > 1 and "connect" in msg and r.random() < 0.3:
                line += "\n%s [warn] %s: *%d upstream server temporarily disabled while connecting to upstream, client: %s, server: %s, request: \"%s\", upstream: \"%s\", host: \"%s\"" % (
                    ts, worker, cid, client, server, req, up, server)
        elif x < 0.70:
            g = r.choice(w.groups[:110])
            line = "%s [error] %s: *%d no live upstreams while connecting to upstream, client: %s, server: %s, request: \"%s\", upstream: \"%s%s%s\", host: \"%s\"" % (
                ts, worker, cid, client, server, req, g["scheme"], g["name"], uri, server)
        elif x < 0.80:
            php = w.server_php[server] or w.groups[113]
            parts = ["PHP message: " + r.choice(PHP_ERRORS).format(f=r.choice(PHP_FILES), n=r.randint(1, 3000))
                     for _ in range(r.choice([1, 1, 2, 3]))]
            body = "; ".join(parts)
            if r.random() < 0.4:  # nginx logs the stderr payload raw: a stack trace spans lines
                frames = ["#%d %s(%d): App\\Kernel->handle()" % (i, r.choice(PHP_FILES), r.randint(1, 900))
                          for i in range(r.randint(2, 9))]
                body += "\nStack trace:\n" + "\n".join(frames) + "\n#%d {main}" % len(frames)
            line = "%s [error] %s: *%d FastCGI sent in stderr: \"%s\" while reading response header from upstream, client: %s, server: %s, request: \"GET %s HTTP/1.1\", upstream: \"fastcgi://%s:\", host: \"%s\"" % (
                ts, worker, cid, body, client, server, r.choice(PHP_PAGES), php["peers"][0], server)
        elif x < 0.87:
            line = "%s [error] %s: *%d limiting requests, excess: %d.%03d by zone \"%s\", client: %s, server: %s, request: \"%s\", host: \"%s\"" % (
                ts, worker, cid, r.randint(0, 60), r.randint(0, 999), r.choice(["one", "api", "login"]), client, server, req, server)
        elif x < 0.89:
            line = "%s [error] %s: *%d %s.default.svc.cluster.local could not be resolved (3: Host not found), client: %s, server: %s, request: \"%s\", host: \"%s\"" % (
                ts, worker, cid, r.choice(SVC), client, server, req, server)
        elif x < 0.94:
            line = "%s [info] %s: *%d client closed connection while waiting for request, client: %s, server: 0.0.0.0:443" % (
                ts, worker, cid, client)
        elif x < 0.98:
            line = "%s [error] %s: *%d open() \"/var/www/html%s\" failed (2: No such file or directory), client: %s, server: %s, request: \"%s\", host: \"%s\"" % (
                ts, worker, cid, uri.split("?")[0], client, server, req, server)
        else:
            m = "3100#3100"
            line = "\n".join("%s [notice] %s: %s" % (ts, m, s) for s in [
                "signal 1 (SIGHUP) received from 4242, reconfiguring", "reconfiguring",
                "using the \"epoll\" event method", "start worker processes",
                "start worker process 3105", "gracefully shutting down"])
        line = line[:2047] + "\n"  # NGX_MAX_ERROR_STR
        out.append(line)
        total += len(line)
    return "".join(out)


def access_log(w, r, size):
    out, total = [], 0
    t = 1698278400
    while total < size:
        t += r.randint(0, 1)
        day = 26 + t // 86400 - 19656
        ts = "%02d/Oct/2023:%02d:%02d:%02d +0000" % (day, t // 3600 % 24, t // 60 % 60, t % 60)
        server = r.choice(w.servers)
        client = r.choice(w.clients)
        ua = r.choice(UAS)
        ref = "-" if r.random() < 0.7 else "https://%s/" % server
        ua_addr = ua_status = ua_time = "-"
        y = r.random()
        if y < 0.003:
            req, status, size_, rt, ua = r.choice(TLS_GARBAGE + [""]), 400, 157, "0.%03d" % r.randint(0, 400), "-"
        elif y < 0.25:  # static, from disk
            req = "GET /static/app.%08x.%s HTTP/2.0" % (r.getrandbits(32), r.choice(["js", "css", "png"]))
            status = r.choice([200, 200, 200, 304, 404])
            size_, rt = (r.randint(200, 400000) if status == 200 else 0), "0.%03d" % r.randint(0, 20)
        elif y < 0.255:  # limit_req: rejected before any upstream
            req, status, size_, rt = "GET %s HTTP/1.1" % r.choice(w.uris), 503, 197, "0.000"
        else:
            php = w.server_php[server]
            g = php if php is not None and r.random() < 0.4 else w.server_group[server]
            uri = r.choice(PHP_PAGES) if g["kind"] == "fastcgi" else r.choice(w.uris)
            req = "%s %s HTTP/1.1" % ("GET" if r.random() < 0.8 else "POST", uri)
            z = r.random()
            if z < 0.01 and g["name"]:  # no live upstreams: nginx logs the group's name
                status, size_, ua_addr, ua_status, ua_time, rt = 502, 552, g["name"], "502", "0.000", "0.000"
            else:
                addrs, stats, times = [], [], []
                start = r.randrange(len(g["peers"]))
                for i in range(min(len(g["peers"]), 3)):
                    addrs.append(g["peers"][(start + i) % len(g["peers"])])
                    f = r.random()
                    if f < 0.02:  # refused: proxy_next_upstream tries the next peer
                        stats.append("502")
                        times.append("0.%03d" % r.randint(0, 4))
                        continue
                    if f < 0.03:
                        stats.append("504")
                        times.append("60.%03d" % r.randint(0, 9))
                    elif f < 0.04:
                        stats.append(r.choice(["500", "503"]))
                        times.append("%d.%03d" % (r.randint(0, 1), r.randint(2, 999)))
                    else:
                        stats.append(r.choice(["200"] * 12 + ["201", "301", "304", "404"]))
                        times.append("0.%03d" % r.randint(1, 900))
                    break
                status = int(stats[-1])
                ua_addr, ua_status, ua_time = ", ".join(addrs), ", ".join(stats), ", ".join(times)
                if status >= 500 and r.random() < 0.1:  # error_page to @fallback on another group
                    fb = r.choice(w.groups[:110])["peers"][0]
                    ua_addr, ua_status, ua_time, status = ua_addr + " : " + fb, ua_status + " : 200", ua_time + " : 0.004", 200
                size_ = r.randint(100, 60000) if status < 300 else 166
                rt = times[-1]
                if status < 300 and r.random() < 0.01:
                    status, size_, ua_status = 499, 0, "-"
        line = '%s - - [%s] "%s" %d %d "%s" "%s" %s %s %s %s\n' % (
            client, ts, req, status, size_, ref, ua, ua_addr, ua_status, ua_time, rt)
        out.append(line)
        total += len(line)
    return "".join(out)


def config(w, r, out_dir, files):
    conf = os.path.join(out_dir, "conf")
    for d in ("", "upstreams", "maps", "sites", "snippets"):
        os.makedirs(os.path.join(conf, d), exist_ok=True)
    written = {}
    written["snippets/proxy.conf"] = "".join(
        "proxy_set_header %s %s;\n" % kv for kv in [("Host", "$host"), ("X-Real-IP", "$remote_addr"),
                                                   ("X-Forwarded-For", "$proxy_add_x_forwarded_for"),
                                                   ("X-Forwarded-Proto", "$scheme")]) + \
        "proxy_http_version 1.1;\nproxy_set_header Connection \"\";\nproxy_buffer_size 16k;\n"
    written["snippets/php.conf"] = ("fastcgi_param SCRIPT_FILENAME $document_root$fastcgi_script_name;\n"
                                    "fastcgi_param QUERY_STRING $query_string;\nfastcgi_param REQUEST_METHOD $request_method;\n"
                                    "fastcgi_read_timeout 60s;\nfastcgi_buffers 16 16k;\n")
    named = [g for g in w.groups if g["name"]]
    for i in range(3):
        body = ""
        for g in named[i::3]:
            body += "upstream %s {\n    zone %s 64k;\n%s" % (g["name"], g["name"], r.choice(["", "    least_conn;\n", "    ip_hash;\n"]))
            for j, p in enumerate(g["peers"]):
                body += "    server %s%s%s;\n" % (p, " max_fails=3 fail_timeout=10s" if r.random() < 0.5 else "",
                                                 " backup" if j and r.random() < 0.1 else "")
            body += "    keepalive 32;\n}\n\n"
        written["upstreams/pools-%d.conf" % i] = body
    # A $host map over every server (hostnames, a regex), and a geo block of CIDRs.
    body = "map $host $pool {\n    hostnames;\n    default %s;\n" % named[0]["name"]
    for s in w.servers:
        for alias in ("", "www.", "eu.", "us.", "m.", "beta.", "api.", "cdn."):
            body += "    %s%s %s;\n" % (alias, s, w.server_group[s]["name"] or named[0]["name"])
    body += "    \"~^(?<tenant>[a-z0-9-]+)\\.tenant-hosting\\.net$\" tenants_prod;\n}\n"
    written["maps/hosts.conf"] = body
    body = "geo $blocked {\n    default 0;\n"
    for _ in range(4000):
        body += "    %d.%d.%d.0/24 1;\n" % (r.randint(1, 223), r.randint(0, 255), r.randint(0, 255))
    written["maps/geo.conf"] = body + "}\n"
    written["maps/upgrade.conf"] = "map $http_upgrade $connection_upgrade {\n    default upgrade;\n    '' close;\n}\n"
    site_files = files - 1 - len(written)
    for f in range(site_files):
        body = ""
        for s in w.servers[f::site_files]:
            g, php = w.server_group[s], w.server_php[s]
            up = g["name"] or g["peers"][0]
            if up.startswith("unix:"):
                up += ":"
            body += "server {\n    listen 80;\n    server_name %s;\n    return 301 https://$host$request_uri;\n}\n" % s
            body += "server {\n    listen 443 ssl;\n    http2 on;\n    server_name %s www.%s;\n" % (s, s)
            body += "    ssl_certificate /etc/ssl/%s.pem;\n    ssl_certificate_key /etc/ssl/%s.key;\n" % (s, s)
            body += "    root /var/www/%s;\n    access_log /var/log/nginx/%s.access.log upstreamlog;\n" % (s, s)
            body += "    limit_req zone=one burst=20 nodelay;\n    error_page 502 504 /50x.html;\n"
            body += "    if ($blocked) {\n        return 403;\n    }\n"
            body += "    location / {\n        include snippets/proxy.conf;\n        proxy_pass %s%s;\n" % (g["scheme"], up)
            body += "        proxy_read_timeout %ds;\n        proxy_next_upstream error timeout;\n    }\n" % r.choice([30, 60, 120])
            for k in range(r.randint(1, 4)):
                res = r.choice(RES)
                body += "    location /api/v%d/%s/ {\n        include snippets/proxy.conf;\n" % (k + 1, res)
                body += "        proxy_pass %s%s;\n        proxy_buffers 8 16k;\n" % (g["scheme"], up)
                body += "        add_header X-Pool $pool always;\n    }\n"
            body += "    location ~* \\.(js|css|png|svg|woff2)$ {\n        expires 30d;\n        access_log off;\n    }\n"
            if php is not None:
                body += "    location ~ \\.php$ {\n        include snippets/php.conf;\n        fastcgi_pass %s;\n    }\n" % php["peers"][0]
            body += "    location = /50x.html {\n        internal;\n    }\n"
            body += "    location @fallback {\n        proxy_pass http://%s;\n    }\n}\n" % r.choice(named)["name"]
        written["sites/%03d.conf" % f] = body
    main = """user www-data;
worker_processes auto;
pid /run/nginx.pid;
events {
    worker_connections 1024;
}
http {
    log_format upstreamlog '$remote_addr - $remote_user [$time_local] "$request" '
                           '$status $body_bytes_sent "$http_referer" "$http_user_agent" '
                           '$upstream_addr $upstream_status $upstream_response_time $request_time';
    access_log /var/log/nginx/access.log upstreamlog;
    error_log /var/log/nginx/error.log warn;
    limit_req_zone $binary_remote_addr zone=one:10m rate=10r/s;
    proxy_connect_timeout 5s;
    include maps/*.conf;
    include upstreams/*.conf;
    include sites/*.conf;
}
"""
    written["nginx.conf"] = main
    for name, text in written.items():
        with open(os.path.join(conf, name), "w", newline="\n") as fh:
            fh.write(text)
    return len(written), sum(len(t) for t in written.values())


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out_dir")
    ap.add_argument("--seed", type=int, default=14)
    ap.add_argument("--log-bytes", type=int, default=10_000_000)
    ap.add_argument("--servers", type=int, default=300)
    ap.add_argument("--files", type=int, default=30)
    a = ap.parse_args()
    os.makedirs(a.out_dir, exist_ok=True)
    w = World(random.Random(a.seed), a.servers)
    # One generator per output: changing one input never reshuffles the others.
    for name, gen, seed in (("error.log", error_log, 1), ("access.log", access_log, 2)):
        text = gen(w, random.Random(a.seed * 100 + seed), a.log_bytes)
        with open(os.path.join(a.out_dir, name), "wb") as fh:
            fh.write(text.encode("latin-1"))
    nfiles, nbytes = config(w, random.Random(a.seed * 100 + 3), a.out_dir, a.files)
    print("guard_inputs: %d distinct upstream peers; config: %d files, %d bytes" % (len(w.peers()), nfiles, nbytes))


if __name__ == "__main__":
    main()
