#!/usr/bin/env bash
# Queued experiments reuse the cached work of unchanged stages (issue: one shape for the pipeline).
#
# On a committed checkout whose default pipeline is up to date (`dvc status dvc.yaml` clean,
# cache filled by `dvc repro`): queue
# one experiment per model given (each changes only `model`), run the queue with one worker, and
# print, per experiment, its wall time and which stages it ran versus restored from the cache.
#
#   bash benchmarks/bench_experiments.sh pspnet segformer
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$#" -ge 1 ] || { echo "usage: $0 MODEL [MODEL ...]" >&2; exit 2; }
if [ "$(dvc status --json dvc.yaml 2>&1)" != "{}" ] || [ -n "$(git status --porcelain -uno)" ]; then
  echo "error: the default pipeline is not up to date and committed; run dvc repro, commit" >&2
  exit 2
fi
names=()
for model in "$@"; do
  name="bench-$model-$(date +%s)"
  dvc exp run --queue -S "model=$model" -n "$name" >/dev/null
  names+=("$name")
done
start=$(date +%s)
dvc queue start -j 1 >/dev/null
declare -A done_at=()
while [ "${#done_at[@]}" -lt "${#names[@]}" ]; do
  sleep 5
  status="$(dvc queue status 2>/dev/null)"
  for name in "${names[@]}"; do
    if [ -z "${done_at[$name]:-}" ] && grep -q "$name.*\(Success\|Failed\)" <<<"$status"; then
      done_at[$name]=$(date +%s)
    fi
  done
done
prev=$start
echo "| experiment | wall s | stages run | stages restored from cache / unchanged |"
echo "|---|---|---|---|"
for name in "${names[@]}"; do
  log="$(dvc queue logs "$name" 2>&1)"
  ran=$(grep -o "Running stage '[^']*'" <<<"$log" | sed "s/Running stage //; s/'//g" | tr '\n' ' ')
  kept=$(grep -cE "didn't change, skipping|is cached - skipping" <<<"$log" || true)
  echo "| $name | $(( done_at[$name] - prev )) | ${ran:-none} | $kept |"
  prev=${done_at[$name]}
done
dvc queue status
