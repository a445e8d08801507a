#!/usr/bin/env bash
# watch under load: `nginx-medic watch --no-probe` following an error log and an access log that
# bench/watch_load.py appends to (one O_APPEND write of whole entries per log every 10 ms, as
# nginx writes), with the figures the issue sets as targets:
#   load      100k error + 100k access lines/s for 60 s, no rotation: lines written vs read
#             (0 lost), watch's CPU (utime+stime of /proc/PID/stat, from just before the first
#             write to the last line read) as % of one core per 50k lines/s (< 50%), peak RSS
#             (VmHWM), the backlog when the writer stopped, the writer's own CPU;
#   idle      the same watch, 30 s without a write: its CPU (~0);
#   rotation  50k + 50k lines/s through 100 rename rotations (logrotate `create`), one every
#             1 s, the writer reopening after a seeded USR1 delay of 0-2 s: 0 lost, 0
#             duplicated, rotations_total, open fds before and after (no leak);
#   day       24 simulated hours (generator timestamps span 24 h; ~1.2 M error, ~2.2 M access
#             lines) fed through the writer in 20 s: peak RSS < 64 MiB, RSS every 2 s. (All of
#             it lands inside watch's 300 s wall-clock --window: harsher than a real day.)
# load and rotation cycle ~0.8 M-line inputs whose timestamps are as dense as 100k lines/s
# (6-20 s of log time), as live traffic's would be.
#   bench/watch.sh [--seconds 60] [--rate 100000] [--rot-rate 50000] [--rotations 100]
#                  [--rotate-every 1] [--idle 30] [--day-in 20] [--phases load,idle,rotation,day]
# Inputs are generated once (seeded, ../shared/bench generators; ~10 min on 2 busy cores) in
# $WATCH_BENCH_DIR (default /tmp/medic-bench/watch; 1.4 GiB, plus ~3 GiB of logs during the
# load phase, deleted after).
# The binary: $NGINX_MEDIC_BIN, else built (cargo build --release) into $CARGO_TARGET_DIR or
# target/. Exit status 1 when a line was lost (or duplicated by a rotation).
# Needs: python3, curl, mawk. watch and the writer are our children, stopped by PID.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
shared=$root/../shared/bench
dir=${WATCH_BENCH_DIR:-/tmp/medic-bench/watch}
seconds=60 rate=100000 rot_rate=50000 rotations=100 rotate_every=1 idle=30 day_in=20
phases=load,idle,rotation,day
while (($#)); do
  case $1 in
    --seconds) seconds=$2 ;; --rate) rate=$2 ;; --rot-rate) rot_rate=$2 ;;
    --rotations) rotations=$2 ;; --rotate-every) rotate_every=$2 ;; --idle) idle=$2 ;;
    --day-in) day_in=$2 ;; --phases) phases=$2 ;;
    *) echo "usage: bench/watch.sh [--seconds S] [--rate N] [--rot-rate N] [--rotations N] [--rotate-every S] [--idle S] [--day-in S] [--phases load,idle,rotation,day]" >&2; exit 2 ;;
  esac
  shift 2
done
has() { [[ ,$phases, == *,$1,* ]]; }

if [[ -n ${NGINX_MEDIC_BIN:-} ]]; then
  bin=$NGINX_MEDIC_BIN
else
  cargo build --release -p nginx-medic --manifest-path "$root/Cargo.toml"
  bin=${CARGO_TARGET_DIR:-$root/target}/release/nginx-medic
fi
[[ -x $bin ]] || { echo "$bin: no such binary" >&2; exit 1; }
for t in python3 curl mawk; do command -v $t >/dev/null || { echo "needs $t" >&2; exit 1; }; done
fmt='$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent" $upstream_addr $upstream_status $upstream_response_time $request_time'
hz=$(getconf CLK_TCK)

# -- inputs: 24 hours of each log (2023-10-26), seeded, made once. The generators run past 24 h
#    (error: x1.35, its incidents add entries; access: x1.15) and mawk stops at the next day.
mkdir -p "$dir"
err_src=$dir/day-error.log acc_src=$dir/day-access.log
need_gen() {
  for g in gen_error_log.py gen_access_log.py; do
    [[ -f $shared/$g ]] || { echo "$shared/$g missing: the inputs come from ../shared/bench's generators (not in this checkout)" >&2; exit 1; }
  done
}
if [[ ! -s $err_src || ! -s $acc_src ]]; then
  need_gen
  echo "== generating 24 h of logs in $dir (once; a few minutes)"
  [[ -s $err_src ]] || {
    { python3 "$shared/gen_error_log.py" --seed 1 --rate 10 --lines 1166400 2>/dev/null || true; } |
      LC_ALL=C mawk '/^2023\/10\/27 / { exit } { print }' > "$err_src.tmp" && mv "$err_src.tmp" "$err_src"
  } &
  [[ -s $acc_src ]] || {
    { python3 "$shared/gen_access_log.py" --seed 2 --rate 25 --lines 2484000 2>/dev/null || true; } |
      LC_ALL=C mawk '$4 ~ /^\[27\/Oct\/2023:/ { exit } { print }' > "$acc_src.tmp" && mv "$acc_src.tmp" "$acc_src"
  } &
  wait
fi
# Load inputs: timestamps as dense as live traffic at 100k lines/s (--rate 100000: ~8 s of log
# time each), so the load's log minutes are few, as they would be live; the writer cycles them.
load_err=$dir/load-error.log load_acc=$dir/load-access.log
if [[ ! -s $load_err || ! -s $load_acc ]]; then
  need_gen
  echo "== generating the load inputs in $dir (once; a minute or two)"
  [[ -s $load_err ]] || { python3 "$shared/gen_error_log.py" --seed 3 --rate 100000 --lines 700000 -o "$load_err.tmp" 2>/dev/null && mv "$load_err.tmp" "$load_err"; } &
  [[ -s $load_acc ]] || { python3 "$shared/gen_access_log.py" --seed 4 --rate 100000 --lines 800000 -o "$load_acc.tmp" 2>/dev/null && mv "$load_acc.tmp" "$load_acc"; } &
  wait
fi
span() { # first and last timestamps of the two inputs
  printf 'error %s .. %s, ' "$(head -c 19 "$err_src")" "$(LC_ALL=C grep -a '^20[0-9][0-9]/' "$err_src" | tail -n 1 | cut -c1-19)"
  printf 'access %s .. %s\n' "$(head -n 1 "$acc_src" | cut -d' ' -f4 | tr -d '[')" "$(tail -n 1 "$acc_src" | cut -d' ' -f4 | tr -d '[')"
}
echo "day inputs: $(wc -l < "$err_src") error lines, $(wc -l < "$acc_src") access lines; $(span)"
err_src=$load_err acc_src=$load_acc
echo "load inputs: $(wc -l < "$err_src") error lines, $(wc -l < "$acc_src") access lines; $(span)"
day_err=$dir/day-error.log day_acc=$dir/day-access.log

# -- helpers
wpid='' lpid='' spid=''
cleanup() {
  for p in $spid $lpid $wpid; do kill "$p" 2>/dev/null || true; done
}
trap cleanup EXIT
start_watch() { # RUNDIR: empty logs, watch from their end
  run=$1
  rm -rf "$run"; mkdir -p "$run"
  : > "$run/error.log"; : > "$run/access.log"
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  "$bin" watch --no-probe --error-log "$run/error.log" --access-log "$run/access.log" \
    --log-format "$fmt" --metrics-listen "127.0.0.1:$port" --state-dir "$run/state" \
    > "$run/watch.out" 2> "$run/watch.err" &
  wpid=$!
  for _ in $(seq 100); do grep -q 'nginx-medic: watching' "$run/watch.err" 2>/dev/null && break; sleep 0.1; done
  grep -q 'nginx-medic: watching' "$run/watch.err" || { echo "watch did not start:" >&2; cat "$run/watch.err" >&2; exit 1; }
  sleep 0.5
}
stop_watch() { kill -TERM "$wpid"; wait "$wpid" || true; wpid=''; }
scrape() { curl -sf "http://127.0.0.1:$port/metrics" > "$run/metrics.txt"; }
metric() { # NAME LOG, from the last scrape
  mawk -v k="$1{log=\"$2\"}" '$1 == k { printf "%d", $2; f = 1 } END { if (!f) printf "0" }' "$run/metrics.txt"
}
read_lines() { scrape; echo $(( $(metric nginx_medic_log_lines_total error) + $(metric nginx_medic_log_lines_total access) )); }
cpu_ticks() { sed 's/^.*) //' "/proc/$1/stat" | mawk '{ print $12 + $13 }'; } # utime+stime
status_kib() { mawk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }
kib2mib() { mawk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
fds() { ls "/proc/$1/fd" | wc -l; }
wjson() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$run/writer.json" "$1"; }
drain() { # until every written line is read, or the count has not moved for 10 s
  local want=$1 last=-1 same=0 n t0=$SECONDS
  while :; do
    n=$(read_lines)
    (( n >= want )) && break
    if (( n == last )); then ((++same)); ((same >= 10)) && break; else same=0; fi
    last=$n; sleep 1
  done
  drained_in=$((SECONDS - t0))
}
threads() { # per-thread CPU seconds of watch: which thread burns it
  for t in /proc/$1/task/*; do
    printf '%s=%.1fs ' "$(tr -d ' ' < "$t/comm")" "$(sed 's/^.*) //' "$t/stat" | mawk -v hz="$hz" '{ print ($12 + $13) / hz }')"
  done
}
fail=0
declare -A fig

# -- a. load (and d. idle on the same watch)
if has load; then
  echo "== load: ${rate} error + ${rate} access lines/s for ${seconds} s, no rotation"
  start_watch "$dir/run-load"
  c0=$(cpu_ticks "$wpid"); fd0=$(fds "$wpid")
  python3 "$root/bench/watch_load.py" --error-src "$err_src" --access-src "$acc_src" \
    --error-log "$run/error.log" --access-log "$run/access.log" --rate "$rate" \
    --seconds "$seconds" --json "$run/writer.json" &
  lpid=$!
  wait "$lpid"; lpid=''
  at_stop=$(read_lines)
  ew=$(wjson error_lines) aw=$(wjson access_lines) wsec=$(wjson seconds)
  drain $((ew + aw))
  c1=$(cpu_ticks "$wpid")
  er=$(metric nginx_medic_log_lines_total error) ar=$(metric nginx_medic_log_lines_total access)
  lost=$(( (ew - er > 0 ? ew - er : 0) + (aw - ar > 0 ? aw - ar : 0) ))
  ((lost == 0)) || fail=1
  hwm=$(status_kib "$wpid" VmHWM)
  read -r cpu pct <<< "$(python3 -c "
c = ($c1 - $c0) / $hz; r = ($ew + $aw) / $wsec
print(f'{c:.1f} {c / $wsec / (r / 50000) * 100:.1f}')")"
  fig[load_lost]=$lost fig[load_pct]=$pct fig[load_hwm]=$hwm
  printf 'load: written error %d access %d (%.0f + %.0f lines/s over %.1f s), read error %d access %d, lost %d; backlog at writer stop %d lines (drained in %d s); watch CPU %s s = %s%% of one core per 50k lines/s; peak RSS %s MiB; writer CPU %s s; parse errors %d/%d\n' \
    "$ew" "$aw" "$(wjson error_rate)" "$(wjson access_rate)" "$wsec" "$er" "$ar" "$lost" \
    "$(( ew + aw - at_stop ))" "$drained_in" "$cpu" "$pct" "$(kib2mib "$hwm")" \
    "$(wjson writer_cpu_s)" "$(metric nginx_medic_parse_errors_total error)" "$(metric nginx_medic_parse_errors_total access)"
  echo "  watch threads (CPU s since start): $(threads "$wpid")"
  if has idle; then
    echo "== idle: ${idle} s without a write"
    c0=$(cpu_ticks "$wpid"); slices='' prev=$c0
    for ((i = 0; i < idle; i += 5)); do # CPU per 5 s slice: does it settle?
      sleep $((idle - i < 5 ? idle - i : 5)); c=$(cpu_ticks "$wpid")
      slices+="$(mawk -v d=$((c - prev)) -v hz="$hz" 'BEGIN { printf "%.2f", d / hz }') "; prev=$c
    done
    c1=$(cpu_ticks "$wpid")
    read -r icpu ipct <<< "$(python3 -c "c = ($c1 - $c0) / $hz; print(f'{c:.2f} {c / $idle * 100:.2f}')")"
    fig[idle_pct]=$ipct
    printf 'idle: watch CPU %s s over %d s = %s%% of one core (CPU s per 5 s: %s); RSS %s MiB; fds %d (%d before the load)\n' \
      "$icpu" "$idle" "$ipct" "${slices% }" "$(kib2mib "$(status_kib "$wpid" VmRSS)")" "$(fds "$wpid")" "$fd0"
  fi
  stop_watch
  rm -f "$run"/*.log*
fi

# -- b. rotation
if has rotation; then
  echo "== rotation: ${rot_rate} + ${rot_rate} lines/s, ${rotations} rename rotations every ${rotate_every} s, USR1 delayed 0-2 s"
  start_watch "$dir/run-rotation"
  fd0=$(fds "$wpid"); c0=$(cpu_ticks "$wpid")
  python3 "$root/bench/watch_load.py" --error-src "$err_src" --access-src "$acc_src" \
    --error-log "$run/error.log" --access-log "$run/access.log" --rate "$rot_rate" \
    --rotate-every "$rotate_every" --rotations "$rotations" --usr1-delay 0:2 --seed 1 \
    --json "$run/writer.json" &
  lpid=$!
  wait "$lpid"; lpid=''
  ew=$(wjson error_lines) aw=$(wjson access_lines) wsec=$(wjson seconds)
  drain $((ew + aw))
  # the last generations close after rotate_quiet (2 s) without writes
  for _ in $(seq 20); do
    scrape
    (( $(metric nginx_medic_log_rotations_total error) >= rotations && $(metric nginx_medic_log_rotations_total access) >= rotations )) && break
    sleep 1
  done
  sleep 1; read_lines > /dev/null
  c1=$(cpu_ticks "$wpid"); fd1=$(fds "$wpid")
  er=$(metric nginx_medic_log_lines_total error) ar=$(metric nginx_medic_log_lines_total access)
  lost=$(( (ew - er > 0 ? ew - er : 0) + (aw - ar > 0 ? aw - ar : 0) ))
  dup=$(( (er - ew > 0 ? er - ew : 0) + (ar - aw > 0 ? ar - aw : 0) ))
  ((lost == 0 && dup == 0)) || fail=1
  hwm=$(status_kib "$wpid" VmHWM)
  pct=$(python3 -c "print(f'{($c1 - $c0) / $hz / $wsec / (($ew + $aw) / $wsec / 50000) * 100:.1f}')")
  fig[rot_lost]=$lost fig[rot_dup]=$dup fig[rot_fd]="$fd0 -> $fd1" fig[rot_rot]="$(metric nginx_medic_log_rotations_total error)/$(metric nginx_medic_log_rotations_total access)"
  printf 'rotation: %d rotations in %.1f s (USR1 delay mean %s s, max %s s); written error %d access %d, read error %d access %d: lost %d, duplicated %d; rotations_total error %d access %d; suspected_lost %d/%d; fds %d before, %d after; watch CPU %s%% of one core per 50k lines/s; peak RSS %s MiB; parse errors %d/%d\n' \
    "$(wjson rotations)" "$wsec" "$(wjson usr1_delay_mean_s)" "$(wjson usr1_delay_max_s)" \
    "$ew" "$aw" "$er" "$ar" "$lost" "$dup" \
    "$(metric nginx_medic_log_rotations_total error)" "$(metric nginx_medic_log_rotations_total access)" \
    "$(metric nginx_medic_log_lines_suspected_lost_total error)" "$(metric nginx_medic_log_lines_suspected_lost_total access)" \
    "$fd0" "$fd1" "$pct" "$(kib2mib "$hwm")" \
    "$(metric nginx_medic_parse_errors_total error)" "$(metric nginx_medic_parse_errors_total access)"
  stop_watch
  rm -f "$run"/*.log*
fi

# -- c. 24 simulated hours
if has day; then
  echo "== day: 24 h of logs (the whole inputs once) through the writer in ${day_in} s"
  start_watch "$dir/run-day"
  ( while kill -0 "$wpid" 2>/dev/null; do status_kib "$wpid" VmRSS 2>/dev/null || true; sleep 2; done ) > "$run/rss.txt" &
  spid=$!
  python3 "$root/bench/watch_load.py" --error-src "$day_err" --access-src "$day_acc" \
    --error-log "$run/error.log" --access-log "$run/access.log" --once-in "$day_in" \
    --json "$run/writer.json" &
  lpid=$!
  wait "$lpid"; lpid=''
  ew=$(wjson error_lines) aw=$(wjson access_lines)
  drain $((ew + aw))
  sleep 4
  er=$(metric nginx_medic_log_lines_total error) ar=$(metric nginx_medic_log_lines_total access)
  lost=$(( (ew - er > 0 ? ew - er : 0) + (aw - ar > 0 ? aw - ar : 0) ))
  ((lost == 0)) || fail=1
  hwm=$(status_kib "$wpid" VmHWM)
  kill "$spid" 2>/dev/null || true; wait "$spid" 2>/dev/null || true; spid=''
  fig[day_hwm]=$hwm fig[day_lost]=$lost
  printf 'day: written error %d access %d in %s s, read error %d access %d, lost %d; peak RSS %s MiB; RSS every 2 s (MiB): %s\n' \
    "$ew" "$aw" "$(wjson seconds)" "$er" "$ar" "$lost" "$(kib2mib "$hwm")" \
    "$(mawk '{ printf "%s%.0f", (NR > 1 ? " " : ""), $1 / 1024 }' "$run/rss.txt")"
  stop_watch
  rm -f "$run"/*.log*
fi

# -- summary
mib() { [[ -n ${1:-} ]] && printf '%s MiB' "$(kib2mib "$1")" || echo -; }
ok() { [[ -z ${1:-} ]] && echo - || { python3 -c "import sys; sys.exit(0 if $1 else 1)" && echo ok || echo MISSED; }; }
echo "== summary"
printf '%-44s %-22s %-14s %s\n' figure measured target ""
row() { printf '%-44s %-22s %-14s %s\n' "$1" "$2" "$3" "$4"; }
has load && row "load: lines lost" "${fig[load_lost]}" "0" "$(ok "${fig[load_lost]} == 0")"
has load && row "load: % of one core per 50k lines/s" "${fig[load_pct]}%" "< 50%" "$(ok "${fig[load_pct]} < 50")"
has load && row "load: peak RSS" "$(mib "${fig[load_hwm]}")" "< 64 MiB" "$(ok "${fig[load_hwm]} < 65536")"
has load && has idle && row "idle: CPU, % of one core" "${fig[idle_pct]}%" "~0 (< 1%)" "$(ok "${fig[idle_pct]} < 1")"
has rotation && row "rotation: lines lost" "${fig[rot_lost]}" "0" "$(ok "${fig[rot_lost]} == 0")"
has rotation && row "rotation: lines duplicated" "${fig[rot_dup]}" "0" "$(ok "${fig[rot_dup]} == 0")"
has rotation && row "rotation: rotations_total error/access" "${fig[rot_rot]}" "$rotations/$rotations" "$(ok "'${fig[rot_rot]}' == '$rotations/$rotations'")"
has rotation && row "rotation: open fds before -> after" "${fig[rot_fd]}" "no growth" "$(ok "${fig[rot_fd]/->/>=}")"
has day && row "day (24 h simulated): peak RSS" "$(mib "${fig[day_hwm]}")" "< 64 MiB" "$(ok "${fig[day_hwm]} < 65536")"
has day && row "day: lines lost" "${fig[day_lost]}" "0" "$(ok "${fig[day_lost]} == 0")"
exit "$fail"
