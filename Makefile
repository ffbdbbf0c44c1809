# Every target bootstraps .venv itself, so a fresh clone needs nothing but Python >= 3.11.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Two installs, each with its stamp: what the server and the client need to run (`make server`,
# `make client`), and that plus the development tools (`make test` and the rest; `setup`).
RUNTIME_STAMP := $(VENV)/.installed-runtime
STAMP := $(VENV)/.installed
ARGS ?=
LINTED := tlschat tests tools fuzz benchmarks server.py client.py

.PHONY: setup server client test lint typecheck unit redis-server fuzz clean bench bench-quick bench-compare bench-cluster bench-attack chaos bench-encrypted bench-storm web

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# setuptools announces an editable install with a warning banner about import paths, which
# says nothing to someone starting the server or the tests: PYTHONWARNINGS keeps it out.
$(RUNTIME_STAMP): pyproject.toml | $(BIN)/python
	PYTHONWARNINGS=ignore $(BIN)/python -m pip install --quiet -e .
	touch $(RUNTIME_STAMP)

$(STAMP): pyproject.toml | $(BIN)/python
	PYTHONWARNINGS=ignore $(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP) $(RUNTIME_STAMP)

setup: $(STAMP)

server: $(RUNTIME_STAMP)
	$(BIN)/tlschat server $(ARGS)

client: $(RUNTIME_STAMP)
	$(BIN)/tlschat client $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check $(LINTED)
	$(BIN)/ruff format --check $(LINTED)

typecheck: $(STAMP)
	$(BIN)/mypy

# tests/cluster start their own redis-server: installed from Debian's packages when missing
# (as root; otherwise say how).
redis-server:
	@command -v redis-server >/dev/null || { \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			DEBIAN_FRONTEND=noninteractive apt-get update && \
			DEBIAN_FRONTEND=noninteractive apt-get install -y redis-server; \
		else \
			echo "tests/cluster need redis-server: sudo apt-get install redis-server"; exit 1; \
		fi; }

# tests/browser's accessibility audit injects axe-core (web/'s devDependency, pinned in
# web/package-lock.json): installed with npm when missing or when the lockfile changed. Without
# npm that test fails saying so; without Chromium (apt-get install chromium) tests/browser skip.
WEB_DEPS := web/node_modules/.package-lock.json

$(WEB_DEPS): web/package-lock.json
	@if command -v npm >/dev/null; then cd web && npm ci --no-audit --no-fund; \
	else echo "npm not found: tests/browser's accessibility audit needs web/node_modules"; fi

unit: $(STAMP) redis-server $(WEB_DEPS)
	$(BIN)/python -m pytest

test: lint typecheck unit

# Issue 19's fault-injection scenarios at full size (docs/CHAOS.md): 3 servers on one Redis,
# 6 senders, 3 receivers, 60 s of traffic, one fault at 20 s; about 10 minutes. Prints the table
# and writes benchmarks/results/chaos-<time>.json; fails if a scenario loses, repeats, reorders
# or leaves a line unanswered. `make test` runs them at a bounded size (tests/chaos/test_chaos.py).
# ARGS="--scenario redis-kill --logs /tmp/chaos-logs", ARGS="--tree DIR" (another checkout).
chaos: $(STAMP) redis-server
	$(BIN)/python -m tests.chaos $(ARGS)

# Coverage-guided fuzzing with atheris: every target for FUZZ_SECONDS each. New inputs go to
# FUZZ_SCRATCH (the committed fuzz/corpus/ only seeds the run); crashing inputs land in
# FUZZ_SCRATCH/artifacts and the target fails. Worth keeping? Copy one to fuzz/corpus/<target>/.
FUZZ_SECONDS ?= 60
FUZZ_SCRATCH ?= .fuzz-scratch
FUZZ_TARGETS := fuzz_record fuzz_handshake fuzz_server_connection fuzz_client_connection fuzz_frames
FUZZ_STAMP := $(VENV)/.installed-fuzz

$(FUZZ_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,fuzz]'
	touch $(FUZZ_STAMP)

fuzz: $(FUZZ_STAMP)
	@mkdir -p $(FUZZ_SCRATCH)/artifacts
	@failed=""; \
	for target in $(FUZZ_TARGETS); do \
		mkdir -p $(FUZZ_SCRATCH)/$$target; \
		echo "== $$target for $(FUZZ_SECONDS) s"; \
		$(BIN)/python -m fuzz.$$target -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
			-artifact_prefix=$(FUZZ_SCRATCH)/artifacts/$$target- \
			$(FUZZ_SCRATCH)/$$target fuzz/corpus/$$target || failed="$$failed $$target"; \
	done; \
	if [ -n "$$failed" ]; then \
		echo "fuzz: crashed:$$failed (inputs in $(FUZZ_SCRATCH)/artifacts)"; exit 1; \
	fi

# Benchmarks against an asyncio+ssl relay, the same relay on TCP and ngircd (docs/BENCHMARKS.md).
# `bench` installs ngircd with apt-get when it is missing and we are root; `bench-quick` (under
# 2 minutes) skips ngircd if it is not installed. Both print a table and write benchmarks/results/.
BENCH_STAMP := $(VENV)/.installed-bench

$(BENCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	$(BIN)/python -m benchmarks --full --install-ngircd $(ARGS)

bench-quick: $(BENCH_STAMP)
	$(BIN)/python -m benchmarks --quick $(ARGS)

# Issue 16's regression guard: the quick set, each ratio (tlschat / a reference) held against the
# committed benchmarks/baseline.json with its tolerance; fails if one got worse beyond it. Not part
# of `make test` or CI. Without a baseline it says how to write one and fails.
# ARGS=--write-baseline (re)writes it; ARGS="--from benchmarks/results/quick-X.json" runs nothing.
bench-compare: $(BENCH_STAMP)
	$(BIN)/python -m benchmarks.compare $(ARGS)

# The fan-out against 1, 2 and 3 servers sharing a Redis (--broker), and one without it. Needs
# redis-server (apt-get install -y redis-server); ARGS=--quick for one run at N = 100 only.
bench-cluster: $(BENCH_STAMP)
	$(BIN)/python -m benchmarks --cluster $(ARGS)

# Issue 14's cost (docs/BENCHMARKS.md, "End-to-end encrypted rooms"): the fan-out at N = 100 in an
# end-to-end encrypted room next to a plain one, and the client's encryption cost per line; about
# 18 minutes here (medians of 5 runs, 10 s windows). ARGS="--repeat 1 --seconds 5": one run each.
bench-encrypted: $(BENCH_STAMP)
	$(BIN)/python -m benchmarks --encrypted --repeat 5 --seconds 10 $(ARGS)

# Issue 18's join storms (docs/BENCHMARKS.md, "Join storms"): N = 1,000 and 5,000 clients join
# #general of one server at once, then again after a restart (jittered reconnects); about 5
# minutes. Prints the table and writes benchmarks/results/storm-DATE.json. ARGS="--n 1500".
bench-storm: $(BENCH_STAMP)
	$(BIN)/python -m benchmarks.join_storm --n 1000,5000 --restart --json $(ARGS)

# The attacks of issue 13 (docs/BENCHMARKS.md, "Under attack"): each against the tree before that
# issue (a git worktree of f146120, made in ATTACK_BEFORE_TREE when missing) and against this one,
# side by side; about 4 minutes. Not part of `make test` or CI. ARGS="--only parked,flood".
ATTACK_BEFORE_TREE ?= /tmp/tlschat-before

bench-attack: $(BENCH_STAMP)
	$(BIN)/python -m benchmarks.attack --before-tree $(ATTACK_BEFORE_TREE) $(ARGS)

# The web client's pinned JavaScript dependencies (web/package-lock.json), and the Olm library's
# browser build copied into tlschat/web/static/vendor/olm/ (committed, so the wheel and CI need no
# Node for it); run after changing the pinned version. Needs Node 20 and npm.
web:
	cd web && npm ci && node scripts/vendor.mjs

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis $(FUZZ_SCRATCH)
