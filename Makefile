# docforge: `make demo` and `make test` are all a fresh machine needs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_OUT ?= demo-out

.PHONY: install demo test bench clean

install: $(STAMP)

# torch is pinned to the CPU wheel that installs from this machine's disk (an unpinned torch pulls CUDA).
$(STAMP): pyproject.toml cluster/install-system-packages.sh
	bash cluster/install-system-packages.sh
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

demo: install
	bash samples/run-demo.sh $(DEMO_OUT)

test: install
	$(BIN)/python -m pytest -q tests

bench: install
	$(BIN)/python tests/benchmarks/bench_shard_write.py
	$(BIN)/python tests/benchmarks/bench_ingest.py
	$(BIN)/python tests/benchmarks/bench_ocr.py --profile
	$(BIN)/python tests/benchmarks/bench_trainer.py --preset tiny --steps 12
	$(BIN)/python tests/benchmarks/bench_cluster.py --trials 5 --pages 40
	$(BIN)/python tests/benchmarks/bench_doc2md.py --copies 2 --repeats 2
	$(BIN)/python tests/benchmarks/bench_latexml_bindings.py
	$(BIN)/python tests/benchmarks/bench_tables.py
	$(BIN)/python tests/benchmarks/bench_formulas.py
	$(BIN)/python tests/benchmarks/bench_ingest_formats.py
	$(BIN)/python tests/benchmarks/bench_mixture_stream.py

clean:
	rm -rf $(DEMO_OUT) .pytest_cache
