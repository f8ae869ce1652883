#!/usr/bin/env bash
# The trainer's GPU figures in one go (BENCHMARKS.md, "Trainer"): the CUDA tests (the packed attention
# kernels, a sync-free forward and backward), then the 1.5B bench with the packed-row attention, block
# compilation, micro-batch width, gradient accumulation and bf16 weights switched side by side on the same
# GPU, the attention kernels alone, and kernel profiles of the timed steps.
#   bash tests/benchmarks/run_trainer_gpu.sh RESULTS_DIR [PART...]
# PART, in the order they run: test label-loss sdpa varlen varlen-compile-fullwidth varlen-compile
#       varlen-compile-accum8-window1 varlen-compile-accum8 varlen-compile-accum8-process
#       varlen-compile-accum8-window1-bf16w varlen-compile-accum8-bf16w
#       varlen-compile-accum8-window1-bf16w-process varlen-compile-accum8-bf16w-process
#       varlen-compile-accum8-window1-bf16w-fused varlen-compile-accum8-window1-bf16w-process-fused
#       sdpa-per-sample-compile-accum8-window1-bf16w sdpa-per-sample-compile-accum8-bf16w attention-kernels
#       profile-bf16w-process-fused profile-bf16w-process profile-bf16w profile
# (default: test label-loss varlen-compile-accum8-window1-bf16w varlen-compile-accum8-window1-bf16w-process
# varlen-compile-accum8-window1-bf16w-fused varlen-compile-accum8-window1-bf16w-process-fused: what earlier
# runs have not measured, side by side with the 1.5B recipe's setting as measured on 2026-11-26 (seventh
# session: bf16 weights, rows in stream order, the data thread; 41.8 % MFU as logged then, 41.5 % with the
# projector counted as the trainer now counts it), about 8 minutes on an H100. Since the eleventh session
# `--compile` compiles the loss too (the seventh session's runs had it eager): `label-loss` times that part
# alone, eager against compiled, so the bench parts' difference from 2026-11-26 can be split.
# `-process`: the data worker in a process, its batches through shared page-locked slots (the profile of
# the thread runs showed the GPU idle in the micro-batches during which the data thread refilled the
# queue). `-fused`: the Linear weight gradients added into the fp32 sums by their own backward products
# (runtime.fused_weight_grads; the fp32 add was 9.7 ms of a 226 ms micro-batch). `test` runs the CUDA tests,
# the fused products' among them. A second call profiles the best: profile-bf16w-process-fused. The
# other parts were measured on 2026-11-26: sdpa and varlen without compile on an H200; full width, trimmed,
# accumulation 8, bf16 weights, per-sample sdpa (out of memory), the window and the attention kernels on an
# H100.) Checkpoints are written under TMPDIR (set it to /dev/shm where the disk is slow: a 1.5B stage's
# checkpoint with its AdamW state is about 30 GB).
# The GPU machine lacks some of docforge's packages: carry them as wheels (tests/benchmarks/gpu_wheels.sh).
set -u
results=${1:?usage: run_trainer_gpu.sh RESULTS_DIR [PART...]}
shift
parts=${*:-test label-loss varlen-compile-accum8-window1-bf16w varlen-compile-accum8-window1-bf16w-process varlen-compile-accum8-window1-bf16w-fused varlen-compile-accum8-window1-bf16w-process-fused}
mkdir -p "$results"
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
wanted() { [[ " $parts " == *" $1 "* ]]; }
bench() {
    local name=$1; shift
    wanted "$name" || return 0
    echo "== $name: $*"
    python3 tests/benchmarks/bench_trainer.py --preset 1.5b --json "$results/$name.json" "$@" 2>&1 \
        | grep -v "^stage 2 step" | tail -18
}
if wanted test; then
    python3 -m pytest -q -p no:cacheprovider tests/test_trainer_attention.py tests/test_trainer_model.py \
        tests/test_trainer_batch_slots.py tests/test_trainer_bf16_weights.py tests/test_trainer_train.py \
        -k "cuda" -rs 2>&1 | tail -25
fi
if wanted label-loss; then
    echo "== label-loss"
    python3 tests/benchmarks/bench_label_loss.py --json "$results/label-loss.json" 2>&1 | tail -8
fi
bench sdpa --attention sdpa --steps 8 --skip 3
bench varlen --attention varlen --steps 8 --skip 3
bench varlen-compile-fullwidth --attention varlen --compile --pad-to-multiple-of 0 --steps 14 --skip 6
bench varlen-compile --attention varlen --compile --steps 14 --skip 6
bench varlen-compile-accum8-window1 --attention varlen --compile --grad-accum 8 --packing-window 1 --steps 5 --skip 2
bench varlen-compile-accum8 --attention varlen --compile --grad-accum 8 --steps 5 --skip 2
bench varlen-compile-accum8-process --attention varlen --compile --grad-accum 8 --data-worker process --steps 5 --skip 2
bench varlen-compile-accum8-window1-bf16w --attention varlen --compile --grad-accum 8 --packing-window 1 \
    --bf16-weights --steps 5 --skip 2
bench varlen-compile-accum8-bf16w --attention varlen --compile --grad-accum 8 --bf16-weights --steps 5 --skip 2
bench varlen-compile-accum8-window1-bf16w-process --attention varlen --compile --grad-accum 8 --packing-window 1 \
    --bf16-weights --data-worker process --steps 5 --skip 2
bench varlen-compile-accum8-bf16w-process --attention varlen --compile --grad-accum 8 --bf16-weights \
    --data-worker process --steps 5 --skip 2
bench varlen-compile-accum8-window1-bf16w-fused --attention varlen --compile --grad-accum 8 --packing-window 1 \
    --bf16-weights --fused-weight-grads --steps 5 --skip 2
bench varlen-compile-accum8-window1-bf16w-process-fused --attention varlen --compile --grad-accum 8 \
    --packing-window 1 --bf16-weights --fused-weight-grads --data-worker process --steps 5 --skip 2
bench sdpa-per-sample-compile-accum8-window1-bf16w --attention sdpa_per_sample --compile --grad-accum 8 \
    --packing-window 1 --bf16-weights --steps 5 --skip 2
bench sdpa-per-sample-compile-accum8-bf16w --attention sdpa_per_sample --compile --grad-accum 8 --bf16-weights \
    --steps 5 --skip 2
if wanted attention-kernels; then
    echo "== attention-kernels"
    python3 tests/benchmarks/bench_attention_kernels.py --json "$results/attention-kernels.json" 2>&1 | tail -20
fi
bench profile-bf16w-process-fused --attention varlen --compile --grad-accum 8 --packing-window 1 --bf16-weights \
    --fused-weight-grads --data-worker process --steps 4 --skip 2 --profile "$results/profile-bf16w-process-fused"
bench profile-bf16w-process --attention varlen --compile --grad-accum 8 --packing-window 1 --bf16-weights \
    --data-worker process --steps 4 --skip 2 --profile "$results/profile-bf16w-process"
bench profile-bf16w --attention varlen --compile --grad-accum 8 --bf16-weights --steps 4 --skip 2 \
    --profile "$results/profile-bf16w"
bench profile --attention varlen --compile --grad-accum 8 --steps 4 --skip 2 --profile "$results/profile"
