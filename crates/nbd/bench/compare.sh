#!/usr/bin/env bash
# Quick throughput comparison of the plexus-nbd example server with qemu-nbd and nbdkit's
# file plugin, serving the same 1 GiB file over TCP on 127.0.0.1:
#   nbdcopy read  (export → null:), nbdcopy write (1 GiB file → export),
#   qemu-img bench -w (100000 × 4 KiB writes, queue depth 32 and 1).
# Servers alternate round by round so background load spreads evenly. Prints seconds.
# usage: crates/nbd/bench/compare.sh [DIR] [ROUNDS]   (DIR gets two 1 GiB files)
set -euo pipefail
DIR=${1:-/tmp/nbd-compare}
ROUNDS=${2:-4}
PORT=10960
ROOT=$(cd "$(dirname "$0")/../../.." && pwd)
cargo build --release -q -p plexus-nbd --example serve_file --manifest-path "$ROOT/Cargo.toml"
SERVE="$ROOT/target/release/examples/serve_file"
mkdir -p "$DIR" && cd "$DIR"
[ -f src.img ] || head -c 1G /dev/urandom > src.img
[ -f served.img ] || cp src.img served.img
URI=nbd://127.0.0.1:$PORT

run() {
  local hold=""
  case $1 in
    plexus) exec 3< <(sleep 3600); hold=$!; "$SERVE" served.img --tcp 127.0.0.1:$PORT <&3 >/dev/null 2>&1 & ;;
    qemu-nbd) qemu-nbd -f raw -t -e 16 -b 127.0.0.1 -p $PORT served.img & ;;
    nbdkit) nbdkit -f -i 127.0.0.1 -p $PORT file file=served.img & ;;
  esac
  local server=$!
  sleep 1
  local r=() w=()
  for _ in 1 2 3; do r+=("$( { /usr/bin/time -f %e nbdcopy "$URI" null: ; } 2>&1 )"); done
  for _ in 1 2 3; do w+=("$( { /usr/bin/time -f %e nbdcopy src.img "$URI" ; } 2>&1 )"); done
  local b32 b1
  b32=$(qemu-img bench -f raw -w -c 100000 -s 4096 -d 32 "$URI" 2>&1 | awk '/Run completed/ {print $4}')
  b1=$(qemu-img bench -f raw -w -c 100000 -s 4096 -d 1 "$URI" 2>&1 | awk '/Run completed/ {print $4}')
  echo "$1 read ${r[*]} | write ${w[*]} | bench-w d32 $b32 d1 $b1"
  kill "$server"; wait "$server" 2>/dev/null || true
  if [ -n "$hold" ]; then kill "$hold"; fi
}

for _ in $(seq "$ROUNDS"); do for s in plexus qemu-nbd nbdkit; do run $s; done; done
