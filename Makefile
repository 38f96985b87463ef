# Two commands set everything up on a fresh machine: `make dashboard` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
MODEL  ?= sample:imagenet_lite0
PORT   ?= 8501
# The dashboard listens on this machine only; ADDRESS=0.0.0.0 serves every interface.
ADDRESS ?= 127.0.0.1
# Largest upload in MB: Streamlit's server enforces it (--server.maxUploadSize) and the
# dashboard's file widgets read the same option, so they always agree.
MAX_UPLOAD_MB ?= 200
# Extra dashboard options, e.g. ARGS="--memory-mb 6000 --job-seconds 600"
ARGS   ?=
# The CPU build of TensorFlow keeps installs and CI fast; use `make EXTRAS=tensorflow,...` for GPU.
EXTRAS ?= cpu,dashboard,test,ray

.PHONY: install samples dashboard test bench lint clean

$(VENV)/.installed: setup.cfg pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[$(EXTRAS)]"
	touch $@

install: $(VENV)/.installed

samples: install
	$(BIN)/python -m sample_models build

dashboard: samples
	$(BIN)/python -m streamlit run dashboards/app.py --server.address $(ADDRESS) \
		--server.port $(PORT) --server.maxUploadSize $(MAX_UPLOAD_MB) \
		--server.headless true --browser.gatherUsageStats false -- --model "$(MODEL)" $(ARGS)

test: samples
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: samples
	$(BIN)/python -m bench

lint: install
	$(BIN)/ruff check vizkit dashboards sample_models bench tests

clean:
	rm -rf $(VENV) sample_models/build .pytest_cache
