# normcore: `make run` and `make test` are the only commands a fresh clone needs.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# The CPU wheel of torch lies on local disk; installing it by this pin keeps the
# `torch>=2.6` range of the [torch] extra from pulling a multi-GB CUDA build.
TORCH_PIN := torch==2.13.0
# Every other dependency comes from this lock (exact versions and hashes): a fresh clone
# on any day installs what was tested. `make lock` refreshes it on purpose.
LOCK := locks/requirements.txt

.DEFAULT_GOAL := help
.PHONY: help setup bytecode lock run sample test chromium lint bench bench-core bench-quality bench-latency bench-required bench-gpu

help: ## list the targets
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  %-12s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml setup.py normcore/stats/_moments.c $(LOCK)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --require-hashes --no-deps -r $(LOCK)
	$(PY) -m pip install -q --no-deps $(TORCH_PIN)
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	$(PY) -m pip check
	touch $(STAMP)

setup: $(STAMP) bytecode ## create .venv (if missing) and install normcore with every extra, from the lock

# The editable install leaves normcore's byte code to Python, which may not write it
# (PYTHONDONTWRITEBYTECODE): then every process compiles every module it imports, ~50 ms
# of each command's start-up. Compile it as a wheel's install does (only what changed).
bytecode: $(STAMP)
	$(PY) -m compileall -q normcore pipelines

lock: ## refresh locks/requirements.txt within pyproject.toml's ranges (then review and `make test`)
	TORCH_PIN=$(TORCH_PIN) PYTHON=$(PYTHON) locks/refresh.sh

run: sample ## fit + apply + validate the bundled job on sample data; ends with where the artifact, output and report went
	$(VENV)/bin/normcore run --config configs/local.yaml --overwrite

sample: setup ## write the sample data of configs/local.yaml, beam_local.yaml and spark_local.yaml (data/sample)
	$(PY) -m normcore.sample data/sample --rows 200000 --files 4

test: setup chromium ## run the whole test suite
	$(PY) -m pytest

# The report test renders HTML in Debian's headless chromium; it is skipped, with a
# message, only where chromium cannot be installed (no apt, not root).
chromium: ## install chromium (apt) when missing, for the HTML report test
	@command -v chromium >/dev/null || (DEBIAN_FRONTEND=noninteractive apt-get update -qq \
		&& DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
		|| echo "chromium could not be installed: the report rendering test will be skipped"

lint: setup ## ruff
	$(VENV)/bin/ruff check normcore pipelines tests bench

bench: bench-core bench-beam bench-spark bench-quality bench-latency bench-required bench-startup bench-peers ## every benchmark but tft's (figures go to BENCHMARKS.md by hand)

bench-core: setup ## stats kernel vs NumPy; local engine fit / apply of 20M rows with peak RSS (issue 2)
	$(PY) bench/bench_stats_kernel.py
	$(PY) bench/bench_local_engine.py

bench-quality: setup ## data quality: validate vs fit on 2M rows x 8 columns, drift false positives (issue 5)
	$(PY) bench/bench_quality.py

bench-latency: setup ## Normalizer.transform of 1 to 10,000 rows x 8 vs NumPy and scikit-learn (issue 12)
	$(PY) bench/bench_latency.py

bench-required: setup ## write / read CPU of nullable vs not-null float64 Parquet columns (issue 12)
	$(PY) bench/bench_required_columns.py

# Beam engine benchmark (issue 3). bench-tft builds an optional venv with TensorFlow
# Transform (about 2 minutes) and runs normcore, tft and MLTransform side by side.
TFT_VENV ?= .venv-tft
.PHONY: bench-beam bench-tft

bench-beam: setup ## Beam engine benchmark: fit + apply + write of 2M rows (figures go to BENCHMARKS.md by hand)
	$(PY) bench/bench_beam.py

$(TFT_VENV)/.installed:
	test -x $(TFT_VENV)/bin/python || $(PYTHON) -m venv $(TFT_VENV)
	echo '*' > $(TFT_VENV)/.gitignore
	$(TFT_VENV)/bin/pip install -q 'tensorflow-transform>=1.21,<1.22'
	touch $@

bench-tft: setup $(TFT_VENV)/.installed ## Beam benchmark side by side with tft and MLTransform (builds .venv-tft)
	$(PY) bench/bench_beam.py --baselines --tft-python $(TFT_VENV)/bin/python

# Spark engine benchmark (issue 4): one local[2] session, normcore side by side with
# MLlib StandardScaler and hand-written native SQL.
.PHONY: bench-spark

bench-spark: setup ## Spark engine benchmark: fit + apply + write of 2M rows vs MLlib and native SQL (figures go to BENCHMARKS.md by hand)
	$(PY) bench/bench_spark.py

# normcore's local engine against polars and DuckDB doing the same job (issue 12); the
# peers live in their own venv, installed only from locks/peers.txt.
PEERS_VENV ?= .venv-peers
.PHONY: bench-peers bench-startup lock-peers

$(PEERS_VENV)/.installed: locks/peers.txt
	test -x $(PEERS_VENV)/bin/python || $(PYTHON) -m venv $(PEERS_VENV)
	echo '*' > $(PEERS_VENV)/.gitignore
	$(PEERS_VENV)/bin/pip install -q --require-hashes --no-deps -r locks/peers.txt
	$(PEERS_VENV)/bin/pip check
	touch $@

bench-peers: setup $(PEERS_VENV)/.installed ## local fit + apply vs polars and DuckDB on 8M rows x 8 columns, and vs bare pyarrow scans (figures go to BENCHMARKS.md by hand)
	$(PY) bench/bench_local_peers.py --peers-python $(PEERS_VENV)/bin/python

bench-startup: setup ## whole-process start-up: import normcore, inspect, fit / apply of 1k rows (issue 12)
	$(PY) bench/bench_startup.py --engines

lock-peers: ## re-resolve locks/peers.in into locks/peers.txt (with hashes)
	test -x build/uv/bin/uv || ($(PYTHON) -m venv build/uv && build/uv/bin/pip install -q $(UV_PIN))
	build/uv/bin/uv pip compile --quiet --upgrade --universal --python-version 3.11 --generate-hashes \
		--custom-compile-command 'make lock-peers' locks/peers.in -o locks/peers.txt

# LayerNorm / RMSNorm kernels (issue 10): needs a CUDA GPU; elsewhere it prints that it skipped.
bench-gpu: setup ## LayerNorm / RMSNorm kernels vs torch and Liger: GB/s and % of peak bandwidth (CUDA GPU)
	$(PY) bench/layernorm_gpu.py

# The Airflow DAG (pipelines/airflow) and its test run in their own venv, installed only from
# locks/airflow.txt (exact versions and hashes), never in .venv: Airflow's Spark provider
# pulls pyspark-client, which replaces pyspark's files.
AIRFLOW_VENV ?= .venv-airflow
NORMCORE ?= $(CURDIR)/$(VENV)/bin/normcore
UV_PIN := uv==0.13.9
.PHONY: airflow-test lock-airflow

$(AIRFLOW_VENV)/.installed: locks/airflow.txt
	test -x $(AIRFLOW_VENV)/bin/python || $(PYTHON) -m venv $(AIRFLOW_VENV)
	$(AIRFLOW_VENV)/bin/pip install -q --require-hashes --no-deps -r locks/airflow.txt
	$(AIRFLOW_VENV)/bin/pip check
	touch $@

airflow-test: setup $(AIRFLOW_VENV)/.installed ## run the Airflow DAG on sample data: a clean batch passes, a tampered one fails at validate
	$(PY) tests/airflow/check_dag.py --airflow $(AIRFLOW_VENV)/bin/airflow --normcore $(NORMCORE)

lock-airflow: ## re-resolve locks/airflow.in to the newest versions it allows, into locks/airflow.txt (with hashes)
	test -x build/uv/bin/uv || ($(PYTHON) -m venv build/uv && build/uv/bin/pip install -q $(UV_PIN))
	build/uv/bin/uv pip compile --quiet --upgrade --universal --python-version 3.11 --generate-hashes \
		--custom-compile-command 'make lock-airflow' locks/airflow.in -o locks/airflow.txt
