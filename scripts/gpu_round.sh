#!/usr/bin/env bash
# One whole round of measuring on a machine with a GPU, in one go:
#   1. takes the rawrxd binary ($RAWRXD_BIN, else builds it with cargo),
#   2. lists the Vulkan devices,
#   3. correctness: synthetic SmolLM2-shaped models (F16, Q8_0, Q4_K_M) — perplexity on
#      data/eval.txt and a greedy generation, Vulkan against the CPU reference,
#   4. speed: a synthetic model of --shape (default llama-7b) for each variant, `rawrxd bench
#      -p 512 -n 128`, one per-kernel profile, and (where the device has NV_cooperative_matrix2)
#      Q4_K_M's pp512 with the prompt products on matmul_cm2 and on matmul_coopmat alternating,
#      and Q4_K_M's tg128 with the norm inside the products (RAWRXD_NORM_IN=1) against the norm
#      pass, then without norm or attention dispatches and without barriers (timing only),
#   5. batched decode of the Q4_K_M model (llama-batched-bench's shape: 128 prompt and 128
#      generated tokens a sequence, `rawrxd bench --batch`), default and with the integer
#      tensor-core tiles (RAWRXD_MMQ=1) where the device has them,
#   6. writes everything under --out (default results/gpu_round) and a summary table, summary.md.
# Usage: scripts/gpu_round.sh [--out DIR] [--shape llama-7b] [--variants "Q4_K_M Q8_0"]
#                             [--skip-correctness] [--skip-bench] [--skip-batch] [--reps 5]
#                             [--models DIR] [--correct-types "F16 Q8_0 Q4_K_M"]
#                             [--batches 1,2,4,8,12,16]
set -euo pipefail
cd "$(dirname "$0")/.."

out=results/gpu_round
shape=llama-7b
variants="Q2_K Q3_K_M Q4_K_M Q5_K_M Q6_K Q8_0"
reps=5
models=${TMPDIR:-/tmp}/rawrxd-models
do_correct=1
correct_types="F16 Q8_0 Q4_K_M"
do_bench=1
do_batch=1
batches=1,2,4,8,12,16
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out=$2; shift 2 ;;
    --shape) shape=$2; shift 2 ;;
    --variants) variants=$2; shift 2 ;;
    --reps) reps=$2; shift 2 ;;
    --models) models=$2; shift 2 ;;
    --correct-types) correct_types=$2; shift 2 ;;
    --skip-correctness) do_correct=0; shift ;;
    --skip-bench) do_bench=0; shift ;;
    --skip-batch) do_batch=0; shift ;;
    --batches) batches=$2; shift 2 ;;
    *) echo "gpu_round: unknown argument $1" >&2; exit 2 ;;
  esac
done

bin=${RAWRXD_BIN:-}
if [ -z "$bin" ]; then
  cargo build --release --quiet
  bin=${CARGO_TARGET_DIR:-target}/release/rawrxd
fi
mkdir -p "$out" "$models"
threads=$(nproc)
summary="$out/summary.md"
: > "$summary"
say() { echo "$*" | tee -a "$summary"; }

say "# rawrxd GPU round — $(date -u +%FT%TZ)"
say ""
say "binary: $("$bin" --version)  host: $(hostname)  cores: $threads"
"$bin" devices --json > "$out/devices.json"
"$bin" devices | tee "$out/devices.txt"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$out/nvidia-smi.txt" || true

if [ "$do_correct" = 1 ]; then
  say ""
  say "## Correctness: Vulkan vs CPU reference (synthetic smollm-135m shape, data/eval.txt)"
  say ""
  say "| type | PPL cpu | PPL vulkan | rel. diff | greedy 32 identical |"
  say "|---|---|---|---|---|"
  for t in $correct_types; do
    m="$models/smollm-$t.gguf"
    [ -s "$m" ] || "$bin" synth --shape smollm-135m --type "$t" -o "$m" -t "$threads" > /dev/null
    pc=$("$bin" perplexity -m "$m" -f data/eval.txt -c 128 --chunks 4 --backend cpu --json | tee "$out/ppl-cpu-$t.json")
    pv=$("$bin" perplexity -m "$m" -f data/eval.txt -c 128 --chunks 4 --backend vulkan --json | tee "$out/ppl-vulkan-$t.json")
    gc=$("$bin" generate -m "$m" -p "The capital of France is" -n 32 --temp 0 --backend cpu --json | tee "$out/gen-cpu-$t.json")
    gv=$("$bin" generate -m "$m" -p "The capital of France is" -n 32 --temp 0 --backend vulkan --json | tee "$out/gen-vulkan-$t.json")
    python3 - "$t" "$pc" "$pv" "$gc" "$gv" <<'PY' | tee -a "$summary"
import json, sys
t, pc, pv, gc, gv = sys.argv[1], *[json.loads(a) for a in sys.argv[2:]]
a, b = pc["ppl"]["value"], pv["ppl"]["value"]
same = gc.get("tokens") == gv.get("tokens")
print(f"| {t} | {a:.4f} | {b:.4f} | {abs(a-b)/a*100:.4f} % | {'yes' if same else 'NO'} |")
PY
  done
fi

if [ "$do_bench" = 1 ]; then
  say ""
  say "## Speed: synthetic $shape, rawrxd bench -p 512 -n 128 -r $reps (Vulkan)"
  say ""
  say "| variant | size GiB | pp512 t/s | tg128 t/s | ms p50 | ms p99 | GB/s | % peak |"
  say "|---|---|---|---|---|---|---|---|"
  for v in $variants; do
    m="$models/$shape-$v.gguf"
    [ -s "$m" ] || "$bin" synth --shape "$shape" --type "$v" -o "$m" -t "$threads" > "$out/synth-$v.log" 2>&1
    if "$bin" bench -m "$m" -p 512 -n 128 -r "$reps" --backend vulkan --json > "$out/bench-$v.json" 2> "$out/bench-$v.log"; then
      python3 - "$v" "$out/bench-$v.json" <<'PY' | tee -a "$summary"
import json, sys
v, r = sys.argv[1], json.load(open(sys.argv[2]))
pp, tg, ms = r["pp_tps"], r["tg_tps"], r["tg_ms"]
bw = r.get("effective_bandwidth") or 0
share = r.get("bandwidth_share")
print(f"| {v} | {r['model_size']/2**30:.2f} | {pp['mean']:.1f} ± {pp['sd']:.1f} | {tg['mean']:.1f} ± {tg['sd']:.1f} | "
      f"{ms['p50']:.2f} | {ms['p99']:.2f} | {bw/1e9:.0f} | {'-' if share is None else f'{share*100:.1f} %'} |")
PY
    else
      say "| $v | failed: $(tail -1 "$out/bench-$v.log") |"
    fi
    if [ "$v" = Q4_K_M ]; then
      "$bin" bench -m "$m" -p 512 -n 128 -r 1 --backend vulkan --profile > "$out/profile-$v.txt" 2>&1 || true
    fi
  done
  say ""
  say "Per-kernel profile (Q4_K_M): $out/profile-Q4_K_M.txt"
  # The prompt products' kernels side by side where the device has NV_cooperative_matrix2
  # (matmul_cm2, the default there) and GL_NV_cooperative_matrix (matmul_coopmat, RAWRXD_CM2=0).
  m="$models/$shape-Q4_K_M.gguf"
  if [ -s "$m" ] && grep -q "matmul_cm2) usable" "$out/devices.txt" 2>/dev/null; then
    say ""
    say "Prompt products, Q4_K_M pp512 (t/s, alternating): "
    for e in X=1 RAWRXD_CM2=0 X=2 RAWRXD_CM2=0; do
      pp=$(env $e "$bin" bench -m "$m" -p 512 -n 0 -r "$reps" --backend vulkan --json 2>/dev/null \
        | python3 -c 'import json,sys; r=json.load(sys.stdin); print("%.1f" % r["pp_tps"]["mean"])' 2>/dev/null)
      case $e in X=*) k=matmul_cm2 ;; *) k="matmul_coopmat (RAWRXD_CM2=0)" ;; esac
      say "- $k: ${pp:-failed}"
    done
  fi
  # Where a decode token goes: Q4_K_M tg128 with the norm inside the products (RAWRXD_NORM_IN=1,
  # opt-in) against the norm pass, alternating; then, timing only (results wrong by design),
  # without the norm or attention dispatches and without barriers (docs/BENCHMARKS.md, "What the
  # norms and the attention cost a decode token").
  if [ -s "$m" ]; then
    say ""
    say "Decode, Q4_K_M tg128 (t/s):"
    for e in X=1 RAWRXD_NORM_IN=1 X=2 RAWRXD_NORM_IN=1 RAWRXD_TIMING_SKIP=rmsnorm \
        RAWRXD_TIMING_SKIP=attn RAWRXD_TIMING_SKIP=rmsnorm,attn RAWRXD_TIMING_NO_BARRIERS=1; do
      tg=$(env $e "$bin" bench -m "$m" -p 0 -n 128 -r "$reps" --backend vulkan --json 2>/dev/null \
        | python3 -c 'import json,sys; r=json.load(sys.stdin); print("%.1f" % r["tg_tps"]["mean"])' 2>/dev/null)
      case $e in
        X=*) k="norm pass (default)" ;;
        RAWRXD_NORM_IN=1) k="norm inside the products ($e)" ;;
        *) k="timing only, $e" ;;
      esac
      say "- $k: ${tg:-failed}"
    done
  fi
fi
if [ "$do_batch" = 1 ]; then
  m="$models/$shape-Q4_K_M.gguf"
  [ -s "$m" ] || "$bin" synth --shape "$shape" --type Q4_K_M -o "$m" -t "$threads" > "$out/synth-Q4_K_M.log" 2>&1
  for mode in 0 1; do
    RAWRXD_MMQ=$mode "$bin" bench -m "$m" --batch "$batches" -p 128 -n 128 --backend vulkan --json \
      > "$out/batch-mmq$mode.json" 2> "$out/batch-mmq$mode.log" || true
  done
  say ""
  say "## Batched decode: synthetic $shape Q4_K_M, rawrxd bench --batch $batches -p 128 -n 128 (S_TG tok/s)"
  say ""
  python3 - "$out/batch-mmq0.json" "$out/batch-mmq1.json" <<'PY' | tee -a "$summary"
import json, sys
def load(p):
    try:
        return json.load(open(p))
    except (OSError, ValueError):
        return None
d, t = load(sys.argv[1]), load(sys.argv[2])
if d is None:
    print("failed: see batch-mmq0.log")
    sys.exit(0)
tiles = {r["b"]: r for r in t["rows"]} if t else {}
print(f"default: {d['decode_matvec']}; RAWRXD_MMQ=1: {t['decode_matvec'] if t else 'failed'}")
print()
print("| sequences | default tok/s | step ms p50 | RAWRXD_MMQ=1 tok/s | step ms p50 |")
print("|---|---|---|---|---|")
for r in d["rows"]:
    o = tiles.get(r["b"])
    tv = f"{o['s_tg']:.1f} | {o['step_ms_p50']:.2f}" if o else "- | -"
    print(f"| {r['b']} | {r['s_tg']:.1f} | {r['step_ms_p50']:.2f} | {tv} |")
PY
fi
echo "gpu_round: done; summary in $summary"
