# make demo: fresh venv, install, train configs/quickstart.flags (about 4 min on 2 CPU cores)
# make test: fresh venv, install with the test extra, run the test suite
VENV ?= .venv
PYTHON = $(VENV)/bin/python

$(VENV)/.installed: setup.cfg pyproject.toml
	python3 -m venv $(VENV)
	$(PYTHON) -m pip install --quiet --upgrade pip
	$(PYTHON) -m pip install --quiet -e ".[test]"
	touch $@

install: $(VENV)/.installed

demo: install
	$(PYTHON) scripts/train.py --flagfile=configs/quickstart.flags \
		$$(test -f runs/quickstart/config.json && echo --resume)
	@echo "sample grids: runs/quickstart/samples/   TensorBoard: $(VENV)/bin/tensorboard --logdir runs/quickstart"

test: install
	$(PYTHON) -m pytest -q tests

.PHONY: install demo test
