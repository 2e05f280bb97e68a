# Each target makes its own virtualenv and installs the package into it, so `make test` and
# `make demo` work on a fresh machine.  torch/torchvision are pinned to the builds that this
# machine kind keeps on local disk (see README "Install"): a bare `torch` would download GBs.
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
ARCH := $(shell uname -m)
ifeq ($(ARCH),aarch64)
TORCH_PINS ?= torch==2.9.1 torchvision==0.24.1
else
TORCH_PINS ?= torch==2.14.1 torchvision==0.29.1
endif
DEMO_OUT ?= demo_out
PYTEST_ARGS ?=
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

# The real lmms-eval lives in its own virtualenv, built from nothing but the `lmms` extra (setup.cfg),
# exactly as the README tells users to install it: the extra carries lmms-eval's range and the pins
# it needs (filelock<4, av<16), so a pin missing there fails here too.
LMMS_VENV ?= .venv-lmms

.PHONY: install test test-lmms demo lint bench clean

$(VENV)/.installed: setup.cfg pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q $(TORCH_PINS)
	$(PY) -m pip install -q -e '.[dev,hf,onnx]'
	touch $@

install: $(VENV)/.installed

test: $(VENV)/.installed
	$(PY) -m pytest -q $(PYTEST_ARGS)

$(LMMS_VENV)/.installed: setup.cfg pyproject.toml
	test -x $(LMMS_VENV)/bin/python || $(PYTHON) -m venv $(LMMS_VENV)
	$(LMMS_VENV)/bin/python -m pip install -q $(TORCH_PINS)
	$(LMMS_VENV)/bin/python -m pip install -q -e '.[dev,lmms]' $(TORCH_PINS)
	touch $@

# Runs only the tests marked lmms_eval, which skip nowhere here: lmms-eval must import.
test-lmms: $(LMMS_VENV)/.installed
	$(LMMS_VENV)/bin/python -c "import lmms_eval"
	$(LMMS_VENV)/bin/python -m tspo.plugins.lmms_eval.compat
	$(LMMS_VENV)/bin/python -m pytest -q -m lmms_eval $(PYTEST_ARGS)

demo: $(VENV)/.installed
	$(VENV)/bin/tspo demo --out $(DEMO_OUT)

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .

bench: $(VENV)/.installed
	$(PY) -m benchmarks

clean:
	rm -rf $(VENV) $(LMMS_VENV) build *.egg-info $(DEMO_OUT)
