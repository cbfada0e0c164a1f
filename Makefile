# cleartext — the two commands of the quick start are `make demo` and `make test`.
# Both work on a fresh Debian machine as root: they install what they need first.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
export DEBIAN_FRONTEND := noninteractive

.PHONY: install system-deps lab-start lab-stop lab-status lab-shell demo test unit lint clean

# The lab runs in a network namespace of its own (lab/netns.py); what talks to it runs there too.
IN_LAB := $(PY) lab/labctl.py exec --

# Debian packages: the Python venv module, OpenSSL, and the lab's real mail servers.
system-deps:
	bash scripts/install-system-deps

$(VENV)/.installed: pyproject.toml
	@command -v python3 >/dev/null || bash scripts/install-system-deps
	@python3 -m venv --help >/dev/null 2>&1 && python3 -c 'import ensurepip' 2>/dev/null || bash scripts/install-system-deps
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check --upgrade pip
	$(PY) -m pip install -q --disable-pip-version-check -e '.[dev]'
	touch $@

install: $(VENV)/.installed

lab-start: install system-deps
	$(PY) lab/labctl.py start

lab-stop:
	@if [ -x $(PY) ]; then $(PY) lab/labctl.py stop; else python3 lab/labctl.py stop; fi

lab-status:
	$(PY) lab/labctl.py status

# A shell where the lab's addresses (127.0.0.2-11) are reachable: try `cleartext scan` on it by hand.
lab-shell: lab-start
	$(IN_LAB) env PATH="$(CURDIR)/$(VENV)/bin:$$PATH" PS1='(cleartext lab) \w\$$ ' bash --norc

# Start the bundled lab of real mail servers on loopback, scan it, print the verdicts.
demo: lab-start
	$(IN_LAB) bash scripts/demo

# Everything the tests need, then the whole suite (unit, property-based, and against the real lab). The
# session enters the lab's network namespace itself (tests/conftest.py).
test: install system-deps
	$(VENV)/bin/ruff check src tests lab scripts
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports
	$(VENV)/bin/pytest -q -p no:cacheprovider

unit: install
	$(VENV)/bin/pytest -q tests/unit

lint: install
	$(VENV)/bin/ruff check src tests lab scripts
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

clean: lab-stop
	rm -rf $(VENV) build *.egg-info src/*.egg-info
	rm -f lab/run
