#!/usr/bin/env bash
# Decode (tg) throughput of synthetic models under several matvec workgroup shapes, to choose the
# per-vendor default in src/engine/vulkan/kernels/matvec.rs. Prints one line per (variant, shape).
# Usage: scripts/tune_matvec.sh [--shape llama-7b] [--variants "Q4_K_M Q8_0"] \
#          [--tunings "8,2,2 8,1,1 4,4,2"] [--models DIR] [--n 64] [--reps 2]
set -euo pipefail
cd "$(dirname "$0")/.."
shape=llama-7b; variants="Q4_K_M Q8_0"; tunings="8,2,2"; models=${TMPDIR:-/tmp}/rawrxd-models; n=64; reps=2
while [ $# -gt 0 ]; do
  case "$1" in
    --shape) shape=$2; shift 2 ;; --variants) variants=$2; shift 2 ;;
    --tunings) tunings=$2; shift 2 ;; --models) models=$2; shift 2 ;;
    --n) n=$2; shift 2 ;; --reps) reps=$2; shift 2 ;;
    *) echo "tune_matvec: unknown argument $1" >&2; exit 2 ;;
  esac
done
bin=${RAWRXD_BIN:-target/release/rawrxd}
mkdir -p "$models"
for v in $variants; do
  m="$models/$shape-$v.gguf"
  [ -s "$m" ] || "$bin" synth --shape "$shape" --type "$v" -o "$m" -t "$(nproc)" > /dev/null
  for t in $tunings; do
    tg=$(RAWRXD_MATVEC_TUNING=$t "$bin" bench -m "$m" -p 0 -n "$n" -r "$reps" --backend vulkan --json \
      | python3 -c 'import json,sys; r=json.load(sys.stdin); r=r[0] if isinstance(r,list) else r; t=r["tg_tps"]; print("%.1f" % t["mean"], "p50_ms=%.3f" % r["tg_ms"]["p50"])')
    echo "$v tuning=$t tg$n=$tg"
  done
done
