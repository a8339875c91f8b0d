# snakevisor — the two commands in README.md (`make demo`, `make test`) start here.
# Every target installs what it needs first (scripts/install-deps.sh: fast when done).

PYTHON    := .venv/bin/python
SANDBOX   := $(PYTHON) -m snakevisor do
PYTEST    := $(PYTHON) -m pytest

# Tests and child processes find the package in the work tree.
export PYTHONPATH := $(CURDIR)

.PHONY: deps demo test test-fast bench docs clean help
.DEFAULT_GOAL := help

help:
	@echo "make demo       run programs in the sandbox (installs dependencies first)"
	@echo "make test       the whole test suite"
	@echo "make test-fast  the tests not marked slow"
	@echo "make bench      native vs sandbox syscalls, start-up, containers through each engine, idle memory"
	@echo "make docs       regenerate docs/compatibility.md from the syscall table"
	@echo "make deps       install Debian packages, the .venv and the stub only"
	@echo "make clean      remove build products (keeps .venv)"

deps:
	@bash scripts/install-deps.sh

demo: deps
	@echo '$$ snakevisor do -- /bin/echo hello from the sandbox'
	@$(SANDBOX) -- /bin/echo hello from the sandbox
	@echo
	@echo '$$ snakevisor do --strace -- /bin/ls /'
	@$(SANDBOX) --strace -- /bin/ls /

test: deps
	$(PYTEST) -q tests

test-fast: deps
	$(PYTEST) -q -m 'not slow' tests

bench: deps
	$(PYTHON) bench/syscall_bench.py
	$(PYTHON) bench/container_bench.py --fix-crun
	$(PYTHON) bench/memory_bench.py

docs: deps
	$(PYTHON) -m snakevisor.syscalls.compat > docs/compatibility.md.tmp
	mv docs/compatibility.md.tmp docs/compatibility.md

clean:
	rm -rf bench/build .pytest_cache snakevisor/platform/stub/snakevisor-stub
	find . -path ./.venv -prune -o -name __pycache__ -type d -exec rm -rf {} +
