#!/usr/bin/env python3
"""watch_load.py - append pre-generated nginx log lines to an error log and an access log at a
fixed rate each, the way nginx writes them, for `nginx-medic watch` benchmarks (bench/watch.sh).

  watch_load.py --error-src E.src --access-src A.src --error-log E --access-log A \
                [--rate 100000 | --error-rate N --access-rate N] [--seconds 60 | --once-in S]
                [--rotate-every R --rotations N --usr1-delay 0:2 --keep 5] [--seed 1]
                [--json OUT]

Every ~10 ms (--tick) each log gets one write() (O_APPEND) of the whole entries that are due:
the sources are mmap'ed and written as slices of that buffer, cut at entry boundaries (an error
log entry can span several physical lines: FastCGI stderr), from a cached index; nothing is done
per line in the loop. The rate counts physical lines ('\\n'), as `nginx_medic_log_lines_total`
does. A source shorter than the run is written again from its start (--once: only once, with
each log's rate = its lines / --once-in, so both logs cover their time span together).

Rotation (--rotate-every R): like logrotate `create`: x.log.(k) -> x.log.(k+1) (the oldest
beyond --keep deleted), x.log -> x.log.1, a new empty x.log; the writer keeps appending to the
renamed file (its open fd) for a seeded random "USR1 delay" in --usr1-delay (seconds, default
0:2) before it reopens the path, as nginx does between logrotate's postrotate and the reopen.
Both logs rotate together and are reopened together (one USR1). A rotation can come before the
previous reopen (R < delay): nginx then writes to x.log.2 meanwhile, as it would.

Prints (and with --json, writes) the lines written per log, the achieved rates, the rotations
and the writer's own CPU seconds.
"""
import argparse
import array
import bisect
import json
import mmap
import os
import random
import sys
import time

CHUNK = 10  # entries per index step: the writer's granularity


def index(src, error):
    """(byte offsets, cumulative physical lines) at every CHUNK-th entry start; cached in
    SRC.idx (rebuilt when SRC is newer)."""
    idx = src + ".idx"
    if os.path.exists(idx) and os.path.getmtime(idx) >= os.path.getmtime(src):
        with open(idx, "rb") as f:
            a = array.array("q")
            a.frombytes(f.read())
        n = len(a) // 2
        return a[:n], a[n:]
    offs, cum = array.array("q", [0]), array.array("q", [0])
    with open(src, "rb") as f:
        data = f.read()
    pos, lines, entries, size = 0, 0, 0, len(data)
    find = data.find
    while pos < size:
        end = find(b"\n", pos)
        if end < 0:  # an unterminated last line: left out
            break
        line_starts_entry = (not error) or (data[pos:pos + 4].isdigit() and data[pos + 4:pos + 5] == b"/")
        if line_starts_entry:
            if entries and entries % CHUNK == 0:
                offs.append(pos)
                cum.append(lines)
            entries += 1
        lines += 1
        pos = end + 1
    offs.append(pos)
    cum.append(lines)
    with open(idx + ".tmp", "wb") as f:
        f.write(offs.tobytes() + cum.tobytes())
    os.replace(idx + ".tmp", idx)
    return offs, cum


class Log:
    def __init__(self, name, src, path, error, rate):
        self.name, self.path, self.rate = name, path, rate
        with open(src, "rb") as f:
            self.mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        self.view = memoryview(self.mm)
        self.offs, self.cum = index(src, error)
        self.last = len(self.offs) - 1
        self.src_lines = self.cum[self.last]
        self.i = 0  # next chunk to write
        self.written = 0  # physical lines
        self.bytes = 0
        self.passes = 0
        self.done = False
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def due(self, elapsed, once):
        """Write the entries due at `elapsed` seconds: one write()."""
        if self.done:
            return
        need = int(self.rate * elapsed) - self.written
        if need <= 0:
            return
        i = self.i
        j = bisect.bisect_left(self.cum, self.cum[i] + need, i + 1)
        if j > self.last:
            j = self.last
        a, b = self.offs[i], self.offs[j]
        if b > a:
            n = os.write(self.fd, self.view[a:b])
            if n != b - a:  # a short write on a regular file: finish it (still whole lines)
                while n < b - a:
                    n += os.write(self.fd, self.view[a + n:b])
            self.written += self.cum[j] - self.cum[i]
            self.bytes += b - a
        self.i = j
        if j == self.last:
            self.passes += 1
            if once:
                self.done = True
            self.i = 0

    def rotate(self, keep):
        p = self.path
        old = f"{p}.{keep}"
        if os.path.exists(old):
            os.unlink(old)
        for k in range(keep - 1, 0, -1):
            if os.path.exists(f"{p}.{k}"):
                os.rename(f"{p}.{k}", f"{p}.{k + 1}")
        os.rename(p, f"{p}.1")
        os.close(os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))  # logrotate `create`

    def reopen(self):
        os.close(self.fd)
        self.fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--error-src", required=True)
    ap.add_argument("--access-src", required=True)
    ap.add_argument("--error-log", required=True)
    ap.add_argument("--access-log", required=True)
    ap.add_argument("--rate", type=float, default=100_000, help="lines/s per log (default 100000)")
    ap.add_argument("--error-rate", type=float)
    ap.add_argument("--access-rate", type=float)
    ap.add_argument("--seconds", type=float, default=60, help="how long to write (default 60)")
    ap.add_argument("--once-in", type=float, metavar="S",
                    help="write each source once, spread over S seconds (rate = lines / S)")
    ap.add_argument("--tick", type=float, default=0.010, help="seconds between writes (default 0.01)")
    ap.add_argument("--rotate-every", type=float, default=0, metavar="R", help="seconds; 0: never")
    ap.add_argument("--rotations", type=int, default=0,
                    help="stop after this many rotations (then write --tail more seconds)")
    ap.add_argument("--tail", type=float, default=3.0,
                    help="seconds written after the last rotation (default 3: past the reopen)")
    ap.add_argument("--usr1-delay", default="0:2", metavar="MIN:MAX")
    ap.add_argument("--keep", type=int, default=5, help="rotated generations kept (logrotate `rotate`)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", metavar="OUT")
    a = ap.parse_args()

    once = a.once_in is not None
    logs = [
        Log("error", a.error_src, a.error_log, True, a.error_rate or a.rate),
        Log("access", a.access_src, a.access_log, False, a.access_rate or a.rate),
    ]
    if once:
        for lg in logs:
            lg.rate = lg.src_lines / a.once_in
    dmin, dmax = (float(x) for x in a.usr1_delay.split(":"))
    rng = random.Random(a.seed)
    rotations, reopens, delays = 0, [], []
    next_rot = a.rotate_every if a.rotate_every > 0 else float("inf")
    stop_at = float("inf") if (once or a.rotations) else a.seconds
    cpu0 = os.times()
    t0 = time.monotonic()
    now = 0.0
    while True:
        now = time.monotonic() - t0
        if now >= stop_at:
            break
        while reopens and reopens[0] <= now:
            reopens.pop(0)
            for lg in logs:
                lg.reopen()
        if now >= next_rot:
            for lg in logs:
                lg.rotate(a.keep)
            rotations += 1
            d = rng.uniform(dmin, dmax)
            delays.append(d)
            reopens.append(now + d)
            reopens.sort()
            next_rot += a.rotate_every
            if a.rotations and rotations >= a.rotations:
                next_rot = float("inf")
                stop_at = now + max(a.tail, d + 0.5)
        for lg in logs:
            lg.due(now, once)
        if once and all(lg.done for lg in logs):
            break
        # sleep to the next tick boundary
        nxt = (int(now / a.tick) + 1) * a.tick
        time.sleep(max(0.0, nxt - (time.monotonic() - t0)))
    # catch up to the end time exactly (the rate over the whole run), then close
    end = time.monotonic() - t0
    if not once:
        for lg in logs:
            lg.due(min(end, stop_at), False)
    for lg in logs:
        os.close(lg.fd)
    wall = time.monotonic() - t0
    cpu1 = os.times()
    cpu = (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)
    out = {
        "seconds": round(wall, 3),
        "writer_cpu_s": round(cpu, 2),
        "rotations": rotations,
        "usr1_delay_mean_s": round(sum(delays) / len(delays), 3) if delays else 0,
        "usr1_delay_max_s": round(max(delays), 3) if delays else 0,
    }
    for lg in logs:
        out[f"{lg.name}_lines"] = lg.written
        out[f"{lg.name}_bytes"] = lg.bytes
        out[f"{lg.name}_rate"] = round(lg.written / wall) if wall else 0
        out[f"{lg.name}_target_rate"] = round(lg.rate)
        out[f"{lg.name}_source_passes"] = lg.passes
    line = (f"writer: {wall:.1f} s; error {logs[0].written} lines ({out['error_rate']}/s, target "
            f"{round(logs[0].rate)}/s), access {logs[1].written} lines ({out['access_rate']}/s, "
            f"target {round(logs[1].rate)}/s); {rotations} rotations; writer CPU {cpu:.1f} s")
    print(line, file=sys.stderr)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(out, f)
    else:
        print(json.dumps(out))


if __name__ == "__main__":
    main()
