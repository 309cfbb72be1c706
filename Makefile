# make demo: fresh venv, install, train configs/quickstart.flags (about 4 min on 2 CPU cores)
# make test: fresh venv, install with the test extra, run the test suite
# After the demo: make tensorboard | make export | make sample | make evaluate
# (each runs in .venv; or activate it once with `. .venv/bin/activate`).
VENV ?= .venv
PYTHON = $(VENV)/bin/python
RUN ?= runs/quickstart

$(VENV)/.installed: setup.cfg pyproject.toml
	python3 -m venv $(VENV)
	$(PYTHON) -m pip install --quiet --upgrade pip
	$(PYTHON) -m pip install --quiet -e ".[test]"
	touch $@

install: $(VENV)/.installed

demo: install
	$(PYTHON) scripts/train.py --flagfile=configs/quickstart.flags \
		$$(test -f $(RUN)/config.json && echo --resume)
	@echo "next: make tensorboard | make export | make sample | make evaluate"
	@echo "  (or activate the environment: . $(VENV)/bin/activate)"

tensorboard: install
	$(VENV)/bin/tensorboard --logdir $(RUN)

export: install
	$(PYTHON) scripts/export.py --logdir=$(RUN) --export_dir=exports/quickstart

sample: install
	$(PYTHON) scripts/sample.py --logdir=$(RUN) --out_dir=samples/quickstart

evaluate: install
	$(PYTHON) scripts/evaluate.py --logdir=$(RUN) --feature_network=classifier \
		--num_samples=500 --output=$(RUN)/scores.json

test: install
	$(PYTHON) -m pytest -q -n 2 tests

.PHONY: install demo tensorboard export sample evaluate test
