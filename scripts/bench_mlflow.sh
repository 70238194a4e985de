#!/usr/bin/env bash
# What --mlflow costs a sweep (issue 27: `make sweep` at most 5% longer): the same sweep, same seed, without and
# with --mlflow to a real `mlflow server` on 127.0.0.1 (.venv-mlflow, SQLite store, local artifacts), in turns,
# ROUNDS times. Prints each run's wall time and the median of each side. The server runs on the same cores as the
# sweep, as it would not be on a cluster: its work counts against the sweep here.
#   scripts/bench_mlflow.sh                       # the quick preset (make sweep), one round
#   PRESET=smoke ROUNDS=2 scripts/bench_mlflow.sh # smaller, twice
#   SWEEP_ARGS="--models cnn,vit" scripts/bench_mlflow.sh   # more flags for both sides
# Needs `make install mlflow-install`, and MNIST_DATA_DIR where the machine cannot download MNIST. Exits 1 when a
# sweep fails. Figures of 2026-12-06: BENCHMARKS.md, "What --mlflow costs a sweep".
set -euo pipefail
cd "$(dirname "$0")/.."
PRESET="${PRESET:-quick}"
ROUNDS="${ROUNDS:-1}"
read -r -a EXTRA <<<"${SWEEP_ARGS:-}"
work="$(mktemp -d /tmp/archsweep-bench-mlflow.XXXXXX)"
port="$(.venv/bin/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
MLFLOW_DISABLE_TELEMETRY=true MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false setsid .venv-mlflow/bin/mlflow server \
    --host 127.0.0.1 --port "$port" --workers 1 --backend-store-uri "sqlite:///$work/mlflow.db" \
    --artifacts-destination "$work/artifacts" >"$work/server.log" 2>&1 &
server=$!
trap 'kill -TERM -- "-$server" 2>/dev/null || true' EXIT  # the server's own process group, by its id
until curl -sf "http://127.0.0.1:$port/health" >/dev/null; do
    kill -0 "$server" 2>/dev/null || { tail -20 "$work/server.log"; exit 1; }
    sleep 0.5
done
uri="http://127.0.0.1:$port"
echo "mlflow server at $uri ($work); preset $PRESET, $ROUNDS round(s); $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)," \
     "$(nproc) cores, avx512f: $(grep -qw avx512f /proc/cpuinfo && echo yes || echo no)"
plain=() tracked=()
for round in $(seq "$ROUNDS"); do
    for side in plain mlflow; do
        flags=()
        [ "$side" = mlflow ] && flags=(--mlflow "$uri")
        start=$(date +%s.%N)
        .venv/bin/python -m jobs.sweep --preset "$PRESET" --output "$work/$side-$round" "${EXTRA[@]}" "${flags[@]}" \
            >"$work/$side-$round.log" 2>&1 || { tail -30 "$work/$side-$round.log"; exit 1; }
        seconds=$(echo "$(date +%s.%N) - $start" | bc)
        printf 'round %s %-6s %8.1f s\n' "$round" "$side" "$seconds"
        if [ "$side" = mlflow ]; then tracked+=("$seconds"); else plain+=("$seconds"); fi
    done
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
p=$(median "${plain[@]}") t=$(median "${tracked[@]}")
printf 'median without %.1f s, with --mlflow %.1f s: %+.1f%%\n' "$p" "$t" "$(echo "($t - $p) * 100 / $p" | bc -l)"
grep -h "mlflow:" "$work"/mlflow-*.log | sort | uniq -c | sort -rn | head -5
