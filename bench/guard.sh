#!/usr/bin/env bash
# The performance guard: instructions counted by callgrind (deterministic, unlike wall-clock on
# a shared 2-core VM) on the three hot paths, against bench/guard.baseline.
#   bench/guard.sh            exit 1 when a path runs >10% more instructions than its baseline
#   bench/guard.sh --update   rewrite bench/guard.baseline with this run's counts
# Inputs come from bench/guard_inputs.py (fixed seed, nothing outside the repo): a 10 MB error
# log, a 10 MB access log, a 300-server config in 30 files. The binary is a release build
# (`cargo build --release -p nginx-medic --locked`), or NGINX_MEDIC_BIN.
# Needs: valgrind, python3 (scripts/test installs both).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
baseline=$root/bench/guard.baseline
limit=10 # percent

update=0
case ${1:-} in
  --update) update=1 ;;
  '') ;;
  *) echo "usage: bench/guard.sh [--update]" >&2; exit 2 ;;
esac
for tool in valgrind python3; do
  command -v "$tool" >/dev/null || { echo "guard: $tool is missing (scripts/test installs it)" >&2; exit 2; }
done

if [[ -n ${NGINX_MEDIC_BIN:-} ]]; then
  bin=$NGINX_MEDIC_BIN
else
  cargo build --release -p nginx-medic --locked --manifest-path "$root/Cargo.toml"
  # Where cargo put it, whatever CARGO_TARGET_DIR or .cargo/config says.
  target=$(cargo metadata --format-version 1 --no-deps --locked --manifest-path "$root/Cargo.toml" |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
  bin=$target/release/nginx-medic
fi
[[ -x $bin ]] || { echo "guard: no binary at $bin" >&2; exit 2; }

dir=$(mktemp -d /tmp/medic-guard.XXXXXX)
trap 'rm -rf "$dir"' EXIT
python3 "$root/bench/guard_inputs.py" "$dir/in" >/dev/null

# name, accepted exit codes, command. `logs --threads 1`: one reader, the same split of the
# file every run. The config parser lexes included files ahead on a helper thread; callgrind runs
# one thread at a time and the hand-over waits on a condvar (no spinning), so which thread lexes
# a file moves a few thousand instructions, not the total. Measured over 3 runs: error-log
# within 0.001%, access-log and config-parse 0.05%, config-lint 0.3% (hash seeds vary per run).
# The counts do depend on the toolchain and on the CPU features memchr picks (AVX2 or SSE2): a
# new Rust or a CI host of another kind may need `--update`.
paths=(error-log access-log config-lint config-parse)
declare -A cmd=(
  [error-log]="logs --format json --threads 1 --no-progress $dir/in/error.log"
  [access-log]="logs --format json --threads 1 --no-progress --access-log $dir/in/access.log"
  [config-lint]="config lint --config $dir/in/conf/nginx.conf --format json --fail-on error"
  [config-parse]="config parse --format crossplane $dir/in/conf/nginx.conf"
)

# Instructions (callgrind's `Ir`) of one run; the command's own exit status must be 0, or 1 for
# `config lint` (findings in the generated config are expected).
count() {
  local name=$1 log=$dir/$1.valgrind status=0
  # shellcheck disable=SC2086 # the command line is split on purpose
  valgrind --tool=callgrind --callgrind-out-file=/dev/null --log-file="$log" \
    "$bin" ${cmd[$name]} >"$dir/$name.out" || status=$?
  if ! { [[ $status -eq 0 ]] || [[ $name == config-lint && $status -eq 1 ]]; }; then
    echo "guard: $name exited $status under valgrind:" >&2
    tail -n 20 "$log" "$dir/$name.out" >&2
    exit 2
  fi
  # "==123== Collected : 123456789" (callgrind's total over every thread)
  local n
  n=$(sed -n 's/^==[0-9]*== Collected : \([0-9]*\)$/\1/p' "$log")
  [[ $n =~ ^[0-9]+$ ]] || { echo "guard: no instruction count in $log:" >&2; cat "$log" >&2; exit 2; }
  echo "$n"
}

declare -A now
for p in "${paths[@]}"; do
  now[$p]=$(count "$p")
done

if [[ $update -eq 1 ]]; then
  {
    echo "# bench/guard.sh: instructions (callgrind Ir) per hot path on bench/guard_inputs.py's inputs."
    echo "# Rewritten by bench/guard.sh --update; the guard fails above +$limit%."
    for p in "${paths[@]}"; do echo "$p ${now[$p]}"; done
  } >"$baseline"
  echo "guard: baseline updated ($baseline)"
  for p in "${paths[@]}"; do printf '%-13s %14d\n' "$p" "${now[$p]}"; done
  exit 0
fi

[[ -s $baseline ]] || { echo "guard: no $baseline (bench/guard.sh --update writes it)" >&2; exit 2; }
declare -A base
while read -r p n; do
  [[ -z $p || $p == \#* ]] && continue
  base[$p]=$n
done <"$baseline"

fail=0
printf '%-13s %14s %14s %7s\n' path baseline now ratio
for p in "${paths[@]}"; do
  b=${base[$p]:-}
  [[ $b =~ ^[0-9]+$ ]] || { echo "guard: $p has no baseline in $baseline" >&2; exit 2; }
  n=${now[$p]}
  ratio=$(awk -v n="$n" -v b="$b" 'BEGIN { printf "%.3f", n / b }')
  note=
  if ((n * 100 > b * (100 + limit))); then
    note="  REGRESSION: more than +$limit%"
    fail=1
  elif ((n * 100 < b * (100 - limit))); then
    note="  faster by more than $limit%: lower the baseline (bench/guard.sh --update)"
  fi
  printf '%-13s %14d %14d %7s%s\n' "$p" "$b" "$n" "$ratio" "$note"
done
exit "$fail"
