#!/usr/bin/env bash
# Probe speed: `nginx-medic probe --config` on 500 loopback targets (every 10th dead: refused;
# every 7th slow: answers after 3 s, beyond its 1 s proxy_read_timeout), against the bound
# "under 2x the largest single timeout".
#   bench/probe.sh [N] [CONCURRENCY]      (default 500 targets, the CLI's default concurrency)
# Needs: python3. The fixture is our child, stopped by PID.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
n=${1:-500}
conc=${2:-}
cargo build --release -p nginx-medic --manifest-path "$root/Cargo.toml"
bin=$root/target/release/nginx-medic
dir=$(mktemp -d /tmp/medic-probe-bench.XXXXXX)
ulimit -n 4096 2>/dev/null || true
python3 "$root/bench/probe_fixture.py" "$dir" "$n" 7 10 3 1s &
fixture=$!
trap 'kill "$fixture" 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 100); do [[ -f $dir/ready ]] && break; sleep 0.1; done
[[ -f $dir/ready ]] || { echo "fixture did not start" >&2; exit 1; }
args=(probe --config "$dir/nginx.conf" --format json --margin-ms 500)
[[ -n $conc ]] && args+=(--concurrency "$conc")
start=$(date +%s.%N)
"$bin" "${args[@]}" > "$dir/probe.json"
end=$(date +%s.%N)
python3 - "$dir/probe.json" "$start" "$end" <<'PY'
import json, sys
r = json.load(open(sys.argv[1])); wall = float(sys.argv[3]) - float(sys.argv[2])
t = r["targets"]
refused = sum(1 for x in t if x["tcp"][0]["connect"]["state"] == "refused")
slow = sum(1 for x in t if x.get("http", {}).get("ttfb_exceeds_timeout"))
ok = sum(1 for x in t if x.get("http", {}).get("status") == 200)
largest = 2.0  # proxy_connect_timeout 2s > proxy_read_timeout 1s (+0.5 s margin)
print(f"{len(t)} targets: {ok} answered, {slow} slower than proxy_read_timeout, {refused} refused")
print(f"wall {wall:.2f} s; largest single timeout {largest:.1f} s; bound 2x = {2*largest:.1f} s: {'OK' if wall < 2*largest else 'OVER'}")
PY
