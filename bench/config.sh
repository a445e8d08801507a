#!/usr/bin/env bash
# Config parsing: `nginx-medic config parse --format crossplane` beside `crossplane parse`
# (the Python reference it reproduces) on the generated 5,000-server / 500-file config, in one
# hyperfine run; then checks both print the same JSON, and reports peak memory.
#   bench/config.sh [DIR]     inputs in DIR (default /tmp/medic-bench; conf_big/ is generated)
# Needs: hyperfine (apt), pip install crossplane==0.5.8, python3.
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
conf=$dir/conf_big/nginx.conf
[[ -s $conf ]] || python3 "$shared/gen_config.py" --out "$dir/conf_big" --servers 5000 --files 500 --seed 1

echo "== same JSON as crossplane parse"
"$bin" config parse --format crossplane "$conf" > "$dir/medic-config.json" || true
crossplane parse "$conf" > "$dir/crossplane-config.json"
if cmp -s "$dir/medic-config.json" "$dir/crossplane-config.json"; then
  echo "identical ($(wc -c < "$dir/medic-config.json") bytes)"
else
  echo "DIFFERENT: diff $dir/medic-config.json $dir/crossplane-config.json" >&2
  exit 1
fi

echo "== speed: medic vs crossplane parse (parse + JSON; and parse + model + lint + JSON)"
bash "$shared/peers.sh" config "$bin config parse --format crossplane {conf}" "$dir"
hyperfine --warmup 1 --runs 5 -n medic_parse "$bin config parse --format crossplane $conf" \
  -n medic_model_lint "$bin config lint --config $conf --format json --fail-on error" \
  -n crossplane "crossplane parse $conf -o /dev/null"

echo "== peak memory (RSS)"
/usr/bin/time -f "medic parse: %M KiB peak RSS, %e s" "$bin" config parse --format crossplane "$conf" > /dev/null
/usr/bin/time -f "medic lint: %M KiB peak RSS, %e s" "$bin" config lint --config "$conf" --format json --fail-on error > /dev/null
/usr/bin/time -f "crossplane: %M KiB peak RSS, %e s" crossplane parse "$conf" -o /dev/null
