# Interlock: every target installs what it needs by itself.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
TOOLS := .tools
CDK_VERSION := 2.1148.1
CDK := $(TOOLS)/node_modules/.bin/cdk
CDK_ARGS ?=
PY_STAMP := $(VENV)/.installed-$(shell cat pyproject.toml layers/constraints.txt | cksum | cut -d' ' -f1)
CDK_STAMP := $(TOOLS)/.installed-$(CDK_VERSION)
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: help setup run test lint typecheck synth deploy layer bench bench-cost bench-throughput bench-burst bench-stream clean

help:
	@echo "make run     - install and start Interlock on the embedded local cloud (http://127.0.0.1:8000)"
	@echo "make test    - install and run the whole test suite (lint, unit, integration, infra, e2e)"
	@echo "make synth   - build the Lambda layer and synthesise the CloudFormation template (offline)"
	@echo "make deploy  - cdk deploy to the AWS account of your current credentials (CDK_ARGS='-c interlock:approver_email=...')"
	@echo "make bench   - cold-start benchmark of every function, on the layer as built, against the boto3 floor"
	@echo "make bench-cost - what AWS bills per 1M runs of each workflow path, counted from local runs (docs/cost.md)"
	@echo "make bench-throughput - local runtime: completed runs/s at 1, 4, 16 senders, fresh and with 10,000 runs stored"
	@echo "make bench-burst      - local runtime: 1,000 signed tickets (10 % redeliveries) from 16 senders, with its memory"
	@echo "make bench-stream     - local runtime: how long a model's streamed answer takes to reach a client of the event stream"

# Each stage says what it does; pip shows each package it fetches (a first install takes a few minutes).
STAGE = @printf '\n==> %s\n'

$(PY_STAMP): pyproject.toml layers/constraints.txt
	@test -x $(BIN)/python || { printf '\n==> %s\n' "creating the virtualenv $(VENV)/"; $(PYTHON) -m venv $(VENV); }
	$(STAGE) "updating pip"
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(STAGE) "installing Interlock and its dependencies into $(VENV)/ (a few minutes the first time, then only when pyproject.toml or layers/constraints.txt changes)"
	$(BIN)/python -m pip install --disable-pip-version-check --progress-bar on -e '.[dev]' -c layers/constraints.txt
	@rm -f $(VENV)/.installed-* && touch $@
	$(STAGE) "installed into $(VENV)/"

$(CDK_STAMP):
	$(STAGE) "installing the AWS CDK CLI $(CDK_VERSION) into $(TOOLS)/ (once; npm is quiet for a minute or two)"
	@mkdir -p $(TOOLS)
	npm install --prefix $(TOOLS) --no-audit --no-fund --loglevel=error --progress=true aws-cdk@$(CDK_VERSION)
	@rm -f $(TOOLS)/.installed-* && touch $@

setup: $(PY_STAMP)

run: $(PY_STAMP)
	$(STAGE) "starting Interlock (the embedded local cloud takes a few seconds)"
	$(BIN)/interlock run

lint: $(PY_STAMP)
	$(STAGE) "lint: ruff"
	$(BIN)/ruff check .

typecheck: $(PY_STAMP)
	$(STAGE) "typecheck: mypy"
	$(BIN)/mypy layers/interlock/interlock functions infra

test: $(PY_STAMP) $(CDK_STAMP) lint typecheck
	$(STAGE) "tests: unit, integration, infra, end-to-end"
	$(BIN)/python -m pytest

layer: $(PY_STAMP)
	$(BIN)/python -m infra.build_layer

# A synthesis to look at, not to deploy: it may keep the placeholder email addresses (with a warning), and on a
# machine without Python 3.13 a layer without bytecode (with a warning; make layer and make deploy refuse one).
synth: export INTERLOCK_LAYER_ALLOW_UNCOMPILED = 1
synth: $(PY_STAMP) $(CDK_STAMP) layer
	$(CDK) synth --quiet -c interlock:allow_placeholder_emails=true $(CDK_ARGS)

deploy: $(PY_STAMP) $(CDK_STAMP) layer
	$(CDK) deploy $(CDK_ARGS)

bench: $(PY_STAMP)
	$(BIN)/python benchmarks/cold_start.py

bench-cost: $(PY_STAMP)
	$(BIN)/python benchmarks/cost.py --runs 20

bench-throughput: $(PY_STAMP)
	$(BIN)/python benchmarks/throughput.py

bench-burst: $(PY_STAMP)
	$(BIN)/python benchmarks/burst.py

bench-stream: $(PY_STAMP)
	$(BIN)/python benchmarks/stream_latency.py

clean:
	rm -rf $(VENV) $(TOOLS) .build cdk.out
