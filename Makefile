# Two commands matter: `make run` and `make test`. Each creates .venv and installs what it needs.
# Python writes its compiled modules (__pycache__, ignored by git) even where the environment says not
# to: every `dreamrelay` process and every test process otherwise compiles the project's modules again
# (about a quarter of a second of CPU a start), and pytest rewrites the test modules again in each one.
unexport PYTHONDONTWRITEBYTECODE
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
PYTHON ?= python3

.PHONY: faults faults-lanes run test unit integration e2e lint bench soak install clean browser prometheus image image-test

$(STAMP): pyproject.toml constraints.txt clients/python/pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	PIP_CONSTRAINT= $(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]' \
		-e './clients/python[cli]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(VENV)/bin/dreamrelay serve

# The suite mostly waits (sandbox timings, subprocesses, a browser), so pytest-xdist workers overlap the
# waits even on 2 cores; worksteal evens out the long tests. TEST_WORKERS=0: one process, as plain `pytest`.
# The fault-injection tests marked `heavy` (the kill -9 soaks, the PostgreSQL restart, Redis killed, the
# scale soak) then run one at a time, with the machine to themselves: beside the rest of the suite on 2
# cores they starve, and in two lanes side by side (tests/conftest.py, `make faults-lanes`) the PostgreSQL
# restart test once met the per-address cap (docs/decisions.md).
TEST_WORKERS ?= 4
HEAVY := -n 0 -m heavy
test: $(STAMP) browser prometheus
	$(VENV)/bin/ruff check src tests bench image
	$(VENV)/bin/mypy
	$(VENV)/bin/pytest -n $(TEST_WORKERS) --dist worksteal -m "not heavy" --durations=25
	$(VENV)/bin/pytest $(HEAVY) --durations=10

# The heavy fault tests alone; faults-lanes: in two lanes side by side (2 min 43 s instead of about 4.5).
faults: $(STAMP)
	$(VENV)/bin/pytest $(HEAVY)

faults-lanes: $(STAMP)
	$(VENV)/bin/pytest -n 2 --dist loadgroup -m heavy

# The suite's three folders on their own (`make test` runs them all, with ruff and mypy first).
# unit: pure rules, no I/O, one process (under 2 s); integration: a store or a server on loopback;
# e2e: real clients (SDKs, the browser, the CLI, several processes).
# The unit layer uses none of the pytest plugins that load hypothesis (schemathesis's, hypothesis's own:
# about a second at start-up) nor anyio's, so `make unit` starts without them.
UNIT_PLUGINS := -p no:schemathesis -p no:hypothesispytest -p no:anyio
unit: $(STAMP)
	$(VENV)/bin/pytest -n 0 -q $(UNIT_PLUGINS) tests/unit

integration: $(STAMP) prometheus
	$(VENV)/bin/pytest -n $(TEST_WORKERS) --dist worksteal tests/integration

e2e: $(STAMP) browser prometheus
	$(VENV)/bin/pytest -n $(TEST_WORKERS) --dist worksteal tests/e2e

# The console's browser tests drive Debian's Chromium (never a downloaded browser). Installed once, only
# when missing, as root (or with password-less sudo); a CJK font so 中文 pages render in screenshots.
CHROMIUM := /usr/bin/chromium
browser:
	@if [ ! -x $(CHROMIUM) ] && command -v apt-get >/dev/null; then \
		if [ "$$(id -u)" = 0 ]; then SUDO=; elif sudo -n true 2>/dev/null; then SUDO="sudo -n"; else SUDO=none; fi; \
		if [ "$$SUDO" = none ]; then echo "chromium is missing and we are not root: the browser tests need it"; \
		else echo "installing chromium for the console's browser tests"; \
			($$SUDO apt-get install -y -qq chromium fonts-wqy-microhei >/dev/null 2>&1 || \
			 ($$SUDO apt-get update -qq >/dev/null && $$SUDO apt-get install -y -qq chromium fonts-wqy-microhei >/dev/null)) || \
			echo "could not install chromium: the browser tests need it"; \
		fi; \
	fi

# The observability tests run a real Prometheus and promtool: Debian's package, installed the same way.
prometheus:
	@if ! command -v promtool >/dev/null && command -v apt-get >/dev/null; then \
		if [ "$$(id -u)" = 0 ]; then SUDO=; elif sudo -n true 2>/dev/null; then SUDO="sudo -n"; else SUDO=none; fi; \
		if [ "$$SUDO" = none ]; then echo "prometheus is missing and we are not root: its tests need it"; \
		else echo "installing prometheus for the observability tests"; \
			($$SUDO apt-get install -y -qq --no-install-recommends prometheus >/dev/null 2>&1 || \
			 ($$SUDO apt-get update -qq >/dev/null && \
			  $$SUDO apt-get install -y -qq --no-install-recommends prometheus >/dev/null)) || \
			echo "could not install prometheus: its tests need it"; \
		fi; \
	fi

# The container image (Dockerfile at the root) with docker where its daemon runs, podman otherwise; where no
# registry is reachable the debian:bookworm-slim base is built from Debian's packages (image/base.sh, cached
# in ~/.cache/dreamrelay). image-test proves the image black-box (image/check.py; docs/deploy.md).
IMAGE ?= dreamrelay:latest
image:
	IMAGE=$(IMAGE) image/build.sh

image-test: image $(STAMP)
	IMAGE=$(IMAGE) $(PY) image/check.py

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests bench image
	$(VENV)/bin/ruff format --check src tests bench image
	$(VENV)/bin/mypy

bench: $(STAMP)
	$(PY) bench/run.py

# Fault 5 of tests/faults at length: API and worker processes killed -9 in a loop for 10 minutes on each
# store, one store after the other (side by side on 2 cores each got half: about 22 minutes in all);
# prints kills, tasks, callbacks and RSS. `make test` runs the same soak for 60 s. Its processes' logs
# stay in .soak-tmp until the next run (the shared /tmp/pytest-of-* folders rotate).
SOAK_SECONDS ?= 600
soak: $(STAMP)
	rm -f .soak-figures
	DREAMRELAY_SOAK_SECONDS=$(SOAK_SECONDS) DREAMRELAY_SOAK_REPORT=$(CURDIR)/.soak-figures \
		$(VENV)/bin/pytest -n 0 --timeout 0 --basetemp=$(CURDIR)/.soak-tmp tests/faults/test_soak.py; status=$$?; \
		cat .soak-figures 2>/dev/null; rm -f .soak-figures; exit $$status

clean:
	rm -rf $(VENV) data .pytest_cache .ruff_cache
