# Two commands matter: `make run` and `make test`. Each creates .venv and installs what it needs.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
PYTHON ?= python3

.PHONY: run test lint bench install clean browser prometheus

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
TEST_WORKERS ?= 4
test: $(STAMP) browser prometheus
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/mypy
	$(VENV)/bin/pytest -n $(TEST_WORKERS) --dist worksteal

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

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench
	$(VENV)/bin/mypy

bench: $(STAMP)
	$(PY) bench/run.py

clean:
	rm -rf $(VENV) data .pytest_cache .ruff_cache
