#!/usr/bin/env bash
# `make demo`: build every demo dataset from the bundled samples (samples/build_demo.py: ingests, OCR pages,
# doc2md, positional, tables, formulas, the stage-3 formats; each verified), score targets with `docforge eval`,
# check the demo mixtures and preview stage 2, then train the tiny recipe through three stages and reload it.
# Usage: bash samples/run-demo.sh DEMO_OUT   (run from the repository root; DEMO_OUT is deleted and rewritten)
set -euo pipefail

if [ $# -ne 1 ] || [ -z "$1" ]; then
    echo "usage: bash samples/run-demo.sh DEMO_OUT" >&2
    exit 2
fi
OUT=${1%/}
DOCFORGE=.venv/bin/docforge
if [ ! -x "$DOCFORGE" ]; then
    echo "$DOCFORGE not found: run this from the repository root after 'make install'" >&2
    exit 2
fi

rm -rf -- "$OUT"
mkdir -p -- "$OUT"

echo "==> the builds (one process, one embedded Ray): captions, conversations, OCR pages, doc2md, positional,"
echo "    tables, formulas, then every stage-3 format sample; each dataset verified"
.venv/bin/python samples/build_demo.py "$OUT"

echo "==> docforge eval (targets scored against themselves: TEDS 1.0, edit distance 0)"
"$DOCFORGE" eval table --pred "$OUT/tables-zh" --gold "$OUT/tables-zh" --out "$OUT/eval-tables-zh.json"
"$DOCFORGE" eval formula --pred "$OUT/formulas" --gold "$OUT/formulas"

echo "==> mixtures over the demo shards"
export DOCFORGE_DEMO_OUT="$(cd "$OUT" && pwd)"
"$DOCFORGE" mix check mixtures/demo/stage2.yaml --samples 1000
"$DOCFORGE" mix check mixtures/demo/stage3.yaml --samples 1000
"$DOCFORGE" mix preview mixtures/demo/stage2.yaml -n 12 --out "$OUT/preview-stage2.html"

echo
echo "Demo done. Mixture preview: $OUT/preview-stage2.html"
echo "Reports:"
for report in "$OUT"/*/report.html; do
    echo "  $report"
done
echo "Look at a few samples: $DOCFORGE shards show $OUT/conversations -n 2"

echo "==> the tiny three-stage training run over the demo mixtures, then a reload of its final model"
export DOCFORGE_TRAIN_OUT="$(cd "$OUT" && pwd)/train"
"$DOCFORGE" train trainer/recipes/tiny.yaml
.venv/bin/python -m trainer.generate "$DOCFORGE_TRAIN_OUT/tiny/stage3/final" \
    --image "$(find samples/llava/images -type f | sort | head -n 1)" --prompt "Read the text." --max-tiles 4
echo "Trained models: $DOCFORGE_TRAIN_OUT/tiny/stage{1,2,3}/final (logs: log.jsonl beside each)"
