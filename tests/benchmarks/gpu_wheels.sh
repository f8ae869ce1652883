#!/usr/bin/env bash
# The wheels a lent GPU machine needs to run the trainer's benchmarks and CUDA tests (run_trainer_gpu.sh):
# its image has torch, numpy, Pillow, OpenCV, PyYAML, rich and pytest, but not docforge's other packages,
# and it cannot reach PyPI. Downloads them here, for its Python 3.12 on x86_64, at the versions this
# checkout's .venv holds, into .whl/ (kept out of git). Each device call then carries .whl and starts with:
#   python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
#       .whl/*.whl && export PYTHONPATH=/tmp/site || exit 3
#   bash tests/benchmarks/gpu_wheels.sh [DEST]   (default: .whl)
set -euo pipefail
cd "$(dirname "$0")/../.."
dest=${1:-.whl}
# transformers with what it and huggingface_hub import (at the least versions they ask for); webdataset;
# pydantic for the recipes
names="transformers huggingface_hub tokenizers safetensors kernels tomlkit hf-xet httpx2 httpcore2 h11 anyio
       truststore idna click regex webdataset braceexpand pydantic pydantic-core annotated-types typing-inspection
       typing-extensions"
pins=()
for name in $names; do
    version=$(.venv/bin/python -m pip show "$name" 2>/dev/null | sed -n 's/^Version: //p')
    [[ -n $version ]] || { echo "gpu_wheels: $name is not installed in .venv (run make install first)" >&2; exit 1; }
    pins+=("$name==$version")
done
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
rm -rf "$dest" && mkdir -p "$dest"
platforms=()
for n in 17 27 28 31 34; do platforms+=(--platform "manylinux_2_${n}_x86_64"); done
.venv/bin/python -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    "${platforms[@]}" --platform manylinux2014_x86_64 -d "$dest" "${pins[@]}"
du -sh "$dest"
