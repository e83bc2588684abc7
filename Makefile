# zkinfer: the two commands a newcomer needs are `make demo` and `make test`.
# Every target that needs the environment depends on `install`, which is idempotent
# (stamp files: a second run does nothing unless pyproject.toml or the npm lockfile changed).

PYTHON      ?= python3
VENV        := .venv
PY          := $(VENV)/bin/python
ZKINFER     := $(VENV)/bin/zkinfer
# torch's CPU wheel, installed before the `models` extra so pip never pulls a multi-GB CUDA build.
TORCH_SPEC  ?= torch==2.13.0
HUMMINGBIRD_SPEC ?= hummingbird-ml==0.4.12
PY_STAMP    := $(VENV)/.zkinfer-installed
NPM_STAMP   := node_modules/.zkinfer-installed
MODEL       ?= credit_risk
# Extra options for `make circuit`, e.g. ARGS="--batch 4 --input-visibility hashed".
ARGS        ?=
PYTEST_ARGS ?=

.PHONY: install circuit demo node-demo test test-long test-fast bench bench-report clean lint solidity-test slither reliability \
	reliability-python reliability-solidity

install: $(PY_STAMP) $(NPM_STAMP)

$(PY_STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "$(TORCH_SPEC)"
	$(PY) -m pip install --quiet -e ".[models,classic,report,dev]"
	# hummingbird-ml (tests convert tree ensembles with it, as many users do) pins onnx<=1.16.1, older
	# than onnxscript and torch's exporter need; it runs fine on the newer onnx, so install it without deps.
	$(PY) -m pip install --quiet --no-deps "$(HUMMINGBIRD_SPEC)" "dill>=0.3" "onnxconverter-common>=1.14" "psutil>=5"
	touch $@

$(NPM_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

# Train/export a zoo model and build its circuit into circuits/$(MODEL)/.
circuit: install
	$(ZKINFER) circuit zoo $(MODEL) --out circuits/$(MODEL) $(ARGS)

demo: install
	$(ZKINFER) demo

# The prover node unattended on a local chain (runs/node-demo/summary.json): see pipeline/node_demo.py.
node-demo: install
	$(ZKINFER) node-demo

# Everything but the `long` tests (more model kinds of kinds already covered): those run in `make test-long`.
test: install
	$(PY) -m pytest -m "not long" $(PYTEST_ARGS)

test-long: install
	$(PY) -m pytest -m long $(PYTEST_ARGS)

# Unit tests only (no circuit builds, chains or clusters).
test-fast: install
	$(PY) -m pytest -m "not slow" $(PYTEST_ARGS)

# Everything: results.json, then REPORT.md, its plots and the README's benchmark tables. KS="1,4,16" narrows the batching curve,
# RUNS=5 times each overhead contender 5 times.
KS   ?=
RUNS ?=
bench: install
	ZKINFER_BENCH_KS="$(KS)" ZKINFER_BENCH_RUNS="$(RUNS)" $(ZKINFER) bench --out bench/results.json

# Regenerate bench/REPORT.md, its plots and the README's benchmark tables from bench/results.json without measuring.
bench-report: install
	$(ZKINFER) bench --out bench/results.json --report-only

# Reliability and adversarial checks with counted results into bench/reliability.json (full figures;
# `make test` runs the short form). RELIABILITY_ARGS="--only crash_resume" runs one check.
RELIABILITY_ARGS ?=
reliability-python: install
	$(ZKINFER) reliability --out bench/reliability.json $(RELIABILITY_ARGS)

lint: install slither
	$(VENV)/bin/ruff check pipeline tests models

# forge's fuzz and invariant tests (foundry.toml profile `default`: fixed seed, bounded runs), offline through
# verifier_contracts/bin/solc, a solc front end over the pinned solcjs. `make test` runs them too.
solidity-test: install
	$(PY) -m pipeline.evm.solidity_checks forge --profile default

# slither over verifier_contracts/src: fails on findings not in verifier_contracts/slither-triage.json.
slither: install
	$(PY) -m pipeline.evm.solidity_checks slither

# The long runs: forge under profile `reliability` (same seed, many more runs), into bench/reliability.json.
reliability-solidity: install
	$(PY) -m pipeline.evm.solidity_checks forge --profile reliability --record bench/reliability.json

# Solidity first, so the table the Python checks print at the end lists every entry.
reliability: reliability-solidity reliability-python

clean:
	rm -rf circuits/*/ bench/results.json bench/REPORT.md bench/*.png bench/reliability.json runs/ .pytest_cache \
		deployments/31337.json verifier_contracts/out .zkinfer verifier_contracts/forge-out verifier_contracts/forge-cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
