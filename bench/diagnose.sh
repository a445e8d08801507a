#!/usr/bin/env bash
# diagnose speed: a host with 50 upstreams (loopback listeners of bench/probe_fixture.py; one
# of them refuses) and
#   1. the 1 GiB error log of ../shared/bench (peers.sh gen): `diagnose` (live: probes, nginx -t,
#      listeners, supervisors) against the log scan alone (`logs --format json`), in one
#      hyperfine run, with the ratio: the wall time should be dominated by the scan;
#   2. a small log (the first 2,000 lines): the healthy-host case, bound 300 ms.
#   bench/diagnose.sh [ERROR_LOG]     (default /tmp/medic-bench/error.log)
# Needs: python3, hyperfine, nginx (for nginx -t). The fixture is our child, stopped by PID.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
log=${1:-/tmp/medic-bench/error.log}
[[ -f $log ]] || { echo "$log missing: run bash ../shared/bench/peers.sh gen" >&2; exit 1; }
cargo build --release -p nginx-medic --manifest-path "$root/Cargo.toml"
bin=$root/target/release/nginx-medic
dir=$(mktemp -d /tmp/medic-diagnose-bench.XXXXXX)
mkdir -p "$dir/logs"
python3 "$root/bench/probe_fixture.py" "$dir" 50 1000 1000 0 5s &
fixture=$!
trap 'kill "$fixture" 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 100); do [[ -f $dir/ready ]] && break; sleep 0.1; done
[[ -f $dir/ready ]] || { echo "fixture did not start" >&2; exit 1; }
head -n 2000 "$log" > "$dir/small-error.log"
common=(diagnose --config "$dir/nginx.conf" --prefix "$dir/" --format json --since 100000d)
hyperfine -N --warmup 1 --runs 5 --export-json "$dir/big.json" \
  -n "logs scan only (1 GiB)" "$bin logs --format json --error-log $log" \
  -n "diagnose live, 50 upstreams (1 GiB)" "$bin ${common[*]} --error-log $log"
hyperfine -N --warmup 2 --runs 20 --export-json "$dir/small.json" \
  -n "diagnose live, 50 upstreams, small log" "$bin ${common[*]} --error-log $dir/small-error.log"
python3 - "$dir/big.json" "$dir/small.json" <<'PY'
import json, sys
big = {r["command"]: r["median"] for r in json.load(open(sys.argv[1]))["results"]}
small = json.load(open(sys.argv[2]))["results"][0]["median"]
scan, diag = big["logs scan only (1 GiB)"], big["diagnose live, 50 upstreams (1 GiB)"]
print(f"1 GiB: scan {scan:.3f} s, diagnose {diag:.3f} s: diagnose/scan = {diag/scan:.2f}x (the rest is probes, nginx -t, rules)")
print(f"healthy host, small log: {small*1000:.0f} ms (bound 300 ms): {'OK' if small < 0.3 else 'OVER'}")
PY
