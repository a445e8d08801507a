#!/usr/bin/env bash
# The benchmark: nginx-medic beside the peers of ../shared/bench, on the same seeded inputs, in
# one hyperfine run per workload (ratios hold on a noisy machine). Checks correctness against the
# generators' ground truth first, then speed, then peak memory on 1 GiB and 4 GiB.
#   bench/run.sh [DIR]        inputs in DIR (default /tmp/medic-bench; ~7 GiB of disk)
# Needs: hyperfine ripgrep mawk goaccess (apt), python3.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
shared=$root/../shared/bench
dir=${1:-/tmp/medic-bench}
# NGINX_MEDIC_BIN skips the build (as in bench/guard.sh).
if [[ -n ${NGINX_MEDIC_BIN:-} ]]; then
  bin=$NGINX_MEDIC_BIN
else
  cargo build --release -p nginx-medic --manifest-path "$root/Cargo.toml"
  bin=$root/target/release/nginx-medic
fi
bash "$shared/peers.sh" gen "$dir" >/dev/null

echo "== correctness against the generators' truth"
"$bin" logs --format json "$dir/error.log" > "$dir/medic-error.json"
python3 "$root/bench/check_truth.py" error "$dir/error.log.truth.tsv" "$dir/medic-error.json" | head -4
"$bin" logs --format json "$dir/access.log" > "$dir/medic-access.json"
python3 "$root/bench/check_truth.py" access "$dir/access.log.truth.tsv" "$dir/medic-access.json" | head -4

echo "== error log, 1 GiB: medic vs rg -c literal, mawk classifier"
bash "$shared/peers.sh" errorlog "$bin logs --format json {error}" "$dir"
echo "== access log, 1 GiB: medic vs wc -l, mawk 5xx; 100 MiB vs GoAccess"
bash "$shared/peers.sh" accesslog "$bin logs --format json {access}" "$dir"
echo "== gzip: error.log.gz"
hyperfine -N --warmup 1 --runs 3 -n medic_gz "$bin logs --format json $dir/error.log.gz" -n zcat "zcat $dir/error.log.gz"

echo "== peak memory (RSS)"
[ -s "$dir/error4g.log" ] || for _ in 1 2 3 4; do cat "$dir/error.log"; done > "$dir/error4g.log"
for f in error.log error4g.log access.log; do
  /usr/bin/time -f "$f: %M KiB peak RSS, %e s, %P CPU" "$bin" logs --format json "$dir/$f" > /dev/null
done
