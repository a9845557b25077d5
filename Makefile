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

# synth -> train the cord model, then the cascaded lesion model -> infer on held-out phantoms -> evaluate
demo: $(STAMP)
	rm -rf $(DEMO_DIR)
	$(BIN)/lesionseg synth $(DEMO_DIR)/train --subjects 12 --contrasts T2w --seed 0
	$(BIN)/lesionseg synth $(DEMO_DIR)/test --subjects 6 --contrasts T2w --seed 1
	$(BIN)/lesionseg train configs/cord_t2w.yaml --data $(DEMO_DIR)/train --out $(DEMO_DIR)/cord
	$(BIN)/lesionseg train configs/lesion_t2w_cascade.yaml --data $(DEMO_DIR)/train --out $(DEMO_DIR)/lesion \
		--set cascade.cord_model=$(DEMO_DIR)/cord/model
	$(BIN)/lesionseg infer $(DEMO_DIR)/test --cascade $(DEMO_DIR)/cord/model $(DEMO_DIR)/lesion/model --out $(DEMO_DIR)/pred
	$(BIN)/lesionseg evaluate --pred $(DEMO_DIR)/pred --gt $(DEMO_DIR)/test --out $(DEMO_DIR)/eval
	@echo "report: $(DEMO_DIR)/eval/report.html"

clean:
	rm -rf $(VENV) $(DEMO_DIR) .pytest_cache
