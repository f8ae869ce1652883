#!/usr/bin/env bash
# The trainer's GPU figures in one go (BENCHMARKS.md, "Trainer"): the CUDA attention test, then the 1.5B
# bench with the packed-row attention, block compilation and gradient accumulation switched side by side
# on the same GPU, and a kernel profile of the compiled run.
#   bash tests/benchmarks/run_trainer_gpu.sh RESULTS_DIR [PART...]
# PART: test sdpa varlen varlen-compile varlen-compile-accum4 varlen-compile-accum4-process profile
# (default: all, in that order).
# Checkpoints are written under TMPDIR (set it to /dev/shm where the disk is slow: a 1.5B stage's
# checkpoint with its AdamW state is about 30 GB).
set -u
results=${1:?usage: run_trainer_gpu.sh RESULTS_DIR [PART...]}
shift
parts=${*:-test sdpa varlen varlen-compile varlen-compile-accum4 varlen-compile-accum4-process profile}
mkdir -p "$results"
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
bench() {
    local name=$1; shift
    [[ " $parts " == *" $name "* ]] || return 0
    echo "== $name: $*"
    python3 tests/benchmarks/bench_trainer.py --preset 1.5b --json "$results/$name.json" "$@" 2>&1 \
        | grep -v "^stage 2 step" | tail -15
}
if [[ " $parts " == *" test "* ]]; then
    python3 -m pytest -q -p no:cacheprovider tests/test_trainer_attention.py 2>&1 | tail -3
fi
bench sdpa --attention sdpa --steps 8 --skip 3
bench varlen --attention varlen --steps 8 --skip 3
bench varlen-compile --attention varlen --compile --steps 14 --skip 6
bench varlen-compile-accum4 --attention varlen --compile --grad-accum 4 --steps 6 --skip 2
bench varlen-compile-accum4-process --attention varlen --compile --grad-accum 4 --data-worker process --steps 6 --skip 2
bench profile --attention varlen --compile --steps 8 --skip 3 --profile "$results/profile.txt"
