#!/usr/bin/env bash
# Where the error-log scan's time goes, stage by stage, beside `rg -c` in one hyperfine run.
#
#   bench/error-log-stages.sh [ERROR_LOG]     (default /tmp/medic-bench/error.log, made by
#                                              ../shared/bench/peers.sh gen)
#
# Builds this commit with bench/error-log-stages.patch applied, in a temporary worktree (the
# patch is a measurement, never part of the product): `EXP=N` ends each entry's work after a
# stage, and `EXP_MMAP=1` maps the file's segments instead of reading them with pread. Each row
# then costs what the stages up to it cost: the floor (the bytes read, the lines found), the
# head (time, level, ids), the context (`client:` .. `upstream:`), the class, the cell (class x
# upstream), the top requests and clients (the full scan). The patch is made for the commit it
# came with; on a later one that changed the scan, `git apply` says where it no longer fits.
# Needs: hyperfine, ripgrep. Build target: target/stages (kept between runs).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
log=${1:-/tmp/medic-bench/error.log}
if [[ ! -s $log ]]; then
  echo "no error log at $log: run ../shared/bench/peers.sh gen, or name one" >&2
  exit 2
fi
work=$(mktemp -d)
cleanup() {
  git -C "$root" worktree remove --force "$work/tree" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
git -C "$root" worktree add --quiet --detach "$work/tree" HEAD
git -C "$work/tree" apply "$here/error-log-stages.patch"
(cd "$work/tree" && cargo build --release --locked -p nginx-medic --target-dir "$root/target/stages")
bin=$root/target/stages/release/nginx-medic
run() { printf 'env %s %s logs --format json %s' "$1" "$bin" "$log"; }
hyperfine -N --warmup 1 --runs "${RUNS:-8}" \
  -n rg_literal "rg -c 'connect\\(\\) failed' $log" \
  -n pread_read_only "$(run 'EXP=8')" \
  -n mmap_count_lines "$(run 'EXP_MMAP=1 EXP=7')" \
  -n mmap_entries "$(run 'EXP_MMAP=1 EXP=1')" \
  -n mmap_head "$(run 'EXP_MMAP=1 EXP=2')" \
  -n mmap_context "$(run 'EXP_MMAP=1 EXP=3')" \
  -n mmap_class "$(run 'EXP_MMAP=1 EXP=4')" \
  -n mmap_cells "$(run 'EXP_MMAP=1 EXP=5')" \
  -n mmap_full "$(run 'EXP_MMAP=1 EXP=0')" \
  -n pread_full "$(run 'EXP=0')"
