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

# The oldest Keras setup.cfg allows (keras>=3.12: TensorFlow 2.21 itself requires it), for
# `make test-oldest`: a second venv with that Keras and a quick subset of the suite.
KERAS_OLDEST ?= 3.12
OLDEST_VENV  := .venv-oldest
OLDEST_TESTS ?= tests/test_models.py tests/test_model_shapes.py tests/test_summary.py \
	tests/test_receptive.py tests/test_loading.py tests/test_scoring.py tests/test_inspection.py \
	tests/methods/test_golden.py tests/methods/test_contract.py tests/test_report.py

.PHONY: install samples dashboard test test-oldest bench lint clean

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

# CI runs this before the tests: lint, format, types ([mypy] in setup.cfg) and the CLI's
# static copy of the method registry.
lint: install
	$(BIN)/ruff check vizkit dashboards sample_models bench tests
	$(BIN)/ruff format --check vizkit dashboards sample_models bench tests
	$(BIN)/mypy
	$(BIN)/python -m vizkit.manifest --check

# The suite's quick subset against the oldest supported Keras, in its own venv. The subset needs
# no sample model; any sample it built would go to the venv's own folder, since Keras cannot
# read files saved by a newer Keras.
test-oldest:
	test -x $(OLDEST_VENV)/bin/python || $(PYTHON) -m venv $(OLDEST_VENV)
	$(OLDEST_VENV)/bin/python -m pip install -q --upgrade pip
	$(OLDEST_VENV)/bin/python -m pip install -q -e ".[cpu,test]" "keras==$(KERAS_OLDEST).*"
	$(OLDEST_VENV)/bin/python -c "import keras; print('keras', keras.__version__)"
	VIZKIT_SAMPLES_DIR=$(OLDEST_VENV)/samples \
		$(OLDEST_VENV)/bin/python -m pytest -q -m "not slow and not browser" $(OLDEST_TESTS)

clean:
	rm -rf $(VENV) $(OLDEST_VENV) sample_models/build .pytest_cache
