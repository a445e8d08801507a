#!/usr/bin/env python3
"""check_truth.py KIND TRUTH.tsv MEDIC.json - compares `nginx-medic logs --format json` with the
ground truth of ../shared/bench/gen_error_log.py (KIND=error) or gen_access_log.py (KIND=access).

error: the generator's causes are mapped to the catalog's classes; counts are compared per
(class, upstream). `other` is compared as a total (medic does not split it by upstream).
Malformed entries are the generator's tolerance and are reported, not compared.
access: 5xx per (minute, upstream, status), the generator's 'final' rows."""
import json
import sys
from collections import Counter

CAUSE = {
    "connect_refused": "connect-refused", "timeout_header": "read-timeout",
    "timeout_body": "read-timeout", "timeout_connect": "connect-timeout",
    "premature_close": "premature-close", "no_live_upstreams": "no-live-upstreams",
    "reset": "upstream-reset", "broken_pipe": "upstream-reset",
    "connect_unix_enoent": "socket-missing", "connect_unix_eacces": "connect-permission",
    "connect_unix_eagain": "socket-backlog", "connect_eaddrnotavail": "ports-exhausted",
    "connect_noroute": "connect-unreachable", "too_big_header": "header-too-big",
    "limit_req": "rate-limited", "limit_conn": "conn-limited", "ssl_handshake": "tls-handshake",
    "ssl_verify": "tls-verify", "invalid_header": "invalid-response", "resolver": "dns-failure",
    "fd_exhaustion": "worker-limits", "fastcgi_stderr": "fastcgi-stderr",
    "limit_req_delay": "other", "upstream_disabled": "other", "noise": "other",
}


def error(truth_path, report):
    truth, malformed = Counter(), 0
    for line in open(truth_path, encoding="latin-1"):
        if line.startswith("#"):
            continue
        cause, peer, n = line.rstrip("\n").split("\t")
        n = int(n)
        if cause == "malformed":
            malformed += n
            continue
        if cause.endswith("_truncated"):
            cause, peer = cause[: -len("_truncated")], "-"
        cls = CAUSE.get(cause, "unmapped:" + cause)
        truth[(cls, "-" if cls == "other" else peer)] += n
    got = Counter()
    for c in report["error_log"]["by_upstream"]:
        got[(c["class"], "-" if c["class"] == "other" else c["upstream"])] += c["count"]
    diff = {k: got[k] - truth[k] for k in set(truth) | set(got) if got[k] != truth[k]}
    total = sum(truth.values())
    off = sum(abs(v) for v in diff.values())
    print(f"error log: truth entries={total} (+{malformed} malformed) medic entries={sum(got.values())} "
          f"unparsed={report['error_log']['unparsed']['count']} keys={len(truth)} mismatched keys={len(diff)} "
          f"sum|diff|={off} ({100.0 * off / max(total, 1):.4f}%)")
    for k, v in sorted(diff.items(), key=lambda kv: -abs(kv[1]))[:12]:
        print(f"  {k[0]:<22} {k[1]:<40} truth={truth[k]} medic={got[k]}")
    return off <= max(malformed * 2, total // 10000)


def access(truth_path, report):
    months = {m: i + 1 for i, m in enumerate("Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split())}
    truth = Counter()
    for line in open(truth_path):
        if line.startswith("#"):
            continue
        kind, minute, up, st, n = line.rstrip("\n").split("\t")
        if kind != "final":
            continue
        d, mon, rest = minute.split("/")
        y, hh, mm = rest.split(":")
        truth[(f"{y}-{months[mon]:02d}-{d}T{hh}:{mm}", up, int(st))] += int(n)
    got = Counter()
    for m in report["access_log"]["per_minute"]:
        for c in m["by"]:
            got[(m["minute"], c["upstream"], c["status"])] += c["count"]
    diff = {k: got[k] - truth[k] for k in set(truth) | set(got) if got[k] != truth[k]}
    print(f"access log: truth 5xx={sum(truth.values())} keys={len(truth)} medic 5xx={sum(got.values())} "
          f"keys={len(got)} mismatched keys={len(diff)}")
    for k in list(diff)[:10]:
        print("  ", k, "truth", truth[k], "medic", got[k])
    return not diff


if __name__ == "__main__":
    kind, truth_path, report_path = sys.argv[1:4]
    report = json.load(open(report_path, encoding="utf-8"))
    ok = (error if kind == "error" else access)(truth_path, report)
    sys.exit(0 if ok else 1)
