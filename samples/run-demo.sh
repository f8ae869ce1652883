#!/usr/bin/env bash
# `make demo`: ingest the bundled samples (captions + LLaVA conversations), generate OCR pages (en, zh)
# and positional questions about them, verify every dataset, then check and preview the stage-2 mixture.
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

echo "==> img2dataset captions: samples/img2dataset -> $OUT/captions"
"$DOCFORGE" build ingest --format img2dataset --input samples/img2dataset \
    --output "$OUT/captions" --source demo-captions

echo "==> LLaVA conversations: samples/llava/conversations.json -> $OUT/conversations"
"$DOCFORGE" build ingest --format llava --input samples/llava/conversations.json --images samples/llava/images \
    --output "$OUT/conversations" --source demo-llava

echo "==> synthetic OCR pages (SynthDoG-style): English and Chinese"
"$DOCFORGE" build ocr --lang en --count 200 --output "$OUT/ocr-en"
"$DOCFORGE" build ocr --lang zh --count 200 --output "$OUT/ocr-zh"

echo "==> doc2md: the bundled LaTeX papers (samples/papers) -> Nougat-style page image + page markdown"
"$DOCFORGE" build doc2md --input samples/papers --output "$OUT/doc2md" --source demo-arxiv --papers-per-task 1

echo "==> positional questions about the OCR and doc2md pages"
"$DOCFORGE" build positional --input "$OUT/ocr-en" "$OUT/ocr-zh" "$OUT/doc2md" --output "$OUT/positional" --source demo-positional \
    --per-page 1

echo "==> tables (en, zh) and formulas (lifted from samples/papers; a formula using a paper's own macro is logged)"
"$DOCFORGE" build tables --lang en --count 40 --output "$OUT/tables-en" --no-progress
"$DOCFORGE" build tables --lang zh --count 40 --output "$OUT/tables-zh" --no-progress
"$DOCFORGE" build formulas --source arxiv --input samples/papers --output "$OUT/formulas" --no-progress
"$DOCFORGE" build tables --arxiv "$OUT/doc2md/lifted" --output "$OUT/tables-arxiv" --no-progress  # doc2md's tables

echo "==> stage-3 public-set formats (samples/datasets): ingest each into $OUT/stage3/FORMAT, verify"
.venv/bin/python samples/datasets/ingest_demo.py "$OUT"

echo "==> verify"
"$DOCFORGE" shards verify "$OUT"/{captions,conversations,ocr-en,ocr-zh,doc2md,positional,tables-en,tables-zh,tables-arxiv,formulas}

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
