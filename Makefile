# The two commands: `make demo` and `make test`. Both set up .venv on a fresh machine by themselves.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# A CPU wheel of exactly this torch is installed first so that pip never resolves a multi-GB CUDA build.
TORCH := torch==2.13.0
DEMO_DIR ?= demo-output

.PHONY: demo test install clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet $(TORCH)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest -q

demo: $(STAMP)
	$(BIN)/lesionseg synth $(DEMO_DIR)/phantoms --subjects 4 --contrasts T2w,T1w,PSIR --seed 0

clean:
	rm -rf $(VENV) $(DEMO_DIR) .pytest_cache
