#!/usr/bin/env bash
# Issue 11's GPU measurements, one command on a GPU machine, from the project root:
#
#   . .offline/activate.sh                     # offline machine: Ray, wheels and MNIST (../shared/offline-gpu)
#   OUT=/some/folder bash scripts/gpu_measure.sh [STEP ...]
#
# STEPs, in this order by default (name some to split the work over several calls):
#   tests      the CUDA tests (tests/test_gpu_step.py) and the CPU tests of the static step
#   bench      `make bench`'s GPU section: our captured loop vs the DataLoader recipes, time to 99%
#   cnn vit resnet18 resnet18_eager faster_rcnn vgg16 alexnet
#              `jobs.train --preset full --gpu on`; resnet18_eager is resnet18 with --set compile=off (the issue's
#              3x comparison); vgg16 and alexnet run with --set weights=none (no ImageNet weights offline)
#   sweep      issue 12's quick sweep of all six on this one GPU (target <= 120 s, cluster busy >= 0.6), with
#              `nvidia-smi dmon` sampling the SM every 2 s into sweep-dmon.log
# The training runs' peak_memory_mb and images/s in summary.tsv are what each model's gpu_share (models/*.py)
# should be set from (a share of the card's memory, with headroom).
# Writes under $OUT (default ./gpu-results): STEP.log for each step, runs/STEP/result.json for each training run,
# BENCHMARKS.md (the GPU section alone), and summary.tsv (one line per run: accuracy, img/s, train and compile s).
set -uo pipefail
OUT=${OUT:-gpu-results}
PY=${PYTHON:-python3}
STEP_TIMEOUT=${STEP_TIMEOUT:-1800}
mkdir -p "$OUT/runs"
steps=("$@")
[ ${#steps[@]} -eq 0 ] && steps=(tests bench cnn vit resnet18 resnet18_eager faster_rcnn vgg16 alexnet sweep)
"$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else '')" | tee "$OUT/device.txt"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv >> "$OUT/device.txt" 2>&1 || true

train() {  # STEP MODEL [--set KEY=VALUE ...]
  local step=$1 model=$2; shift 2
  timeout "$STEP_TIMEOUT" "$PY" -m jobs.train --model "$model" --preset full --gpu on --output "$OUT/runs" \
    --name "$step" "$@"
  "$PY" - "$OUT/runs/$step/result.json" "$step" >> "$OUT/summary.tsv" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
fields = [sys.argv[2], r["env"]["device"], f"test_accuracy={r['test_accuracy']}", f"test_map={r.get('test_map')}",
          f"images_per_s={r['images_per_s']:.0f}", f"train_time_s={r['train_time_s']:.1f}",
          f"compile_time_s={r.get('compile_time_s')}", f"wall_time_s={r['wall_time_s']:.1f}",
          f"batch_size={r['config']['batch_size']}", f"peak_memory_mb={r['peak_memory_mb']:.0f}",
          f"torch={r['env']['torch']}", f"latency_ms_p50={r.get('latency_ms_p50')}",
          f"latency_ms_p95={r.get('latency_ms_p95')}", f"throughput_per_s={r.get('throughput_per_s')}",
          f"gflops_per_image={r.get('gflops_per_image')}", f"model_size_mb={r.get('model_size_mb')}",
          f"onnx_agreement={r.get('onnx_agreement')}", f"onnx_latency_ms_p50={r.get('onnx_latency_ms_p50')}",
          f"ece={r.get('ece')}", f"robustness_mean={r.get('robustness_mean')}"]
print("\t".join(fields))
PY
}

status=0
for step in "${steps[@]}"; do
  echo "=== $step $(date +%T)"
  case $step in
    tests) timeout "$STEP_TIMEOUT" "$PY" -m pytest -q -p no:cacheprovider tests/test_gpu_step.py tests/test_compile.py ;;
    bench) timeout "$STEP_TIMEOUT" "$PY" -m jobs.bench --sections gpu --out "$OUT/BENCHMARKS.md" ;;
    cnn|vit|resnet18|faster_rcnn) train "$step" "$step" ;;
    resnet18_eager) train "$step" resnet18 --set compile=off ;;
    vgg16|alexnet) train "$step" "$step" --set weights=none ;;
    sweep) nvidia-smi dmon -s u -d 2 > "$OUT/sweep-dmon.log" 2>&1 & dmon=$!
           timeout "$STEP_TIMEOUT" "$PY" -m jobs.sweep --preset quick --gpu on --output "$OUT/sweep" --name quick
           kill "$dmon" 2>/dev/null
           "$PY" -c "import json; s = json.load(open('$OUT/sweep/quick/sweep.json')); print('sweep wall_time_s', s['wall_time_s'], 'cluster_busy', s['cluster_busy'], s['cluster_resources'])" ;;
    *) echo "unknown step $step" >&2; false ;;
  esac > "$OUT/$step.log" 2>&1
  code=$?
  echo "=== $step exit $code $(date +%T)"; tail -n 3 "$OUT/$step.log"
  [ $code -ne 0 ] && status=1
done
[ -f "$OUT/summary.tsv" ] && cat "$OUT/summary.tsv"
exit $status
