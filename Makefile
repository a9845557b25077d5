# The two commands: `make demo` and `make test`. Both set up .venv on a fresh machine by themselves.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# A CPU wheel of exactly this torch is installed first so that pip never resolves a multi-GB CUDA build.
TORCH := torch==2.13.0
DEMO_DIR ?= demo-output
REAL ?= ../shared/data/real
FULLFOV ?= ../shared/data/real-fullfov

.PHONY: demo demo-train test test-all install clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet $(TORCH)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# CI's set: everything but the three experiment-script smoke tests (marker `script`, about 170 s)
test: $(STAMP)
	$(BIN)/python -m pytest -q -m "not script"

test-all: $(STAMP)
	$(BIN)/python -m pytest -q

# The shipped default cascade on a real scan (when ../shared/data/real exists) and on phantoms of the three
# contrasts -> masks, lesion tables, HTML reports -> evaluation against the phantoms' ground truth.
demo: $(STAMP)
	rm -rf $(DEMO_DIR)
	$(BIN)/lesionseg synth $(DEMO_DIR)/phantoms --subjects 2 --contrasts T2w,T1w,PSIR --seed 1 --set synth.max_mimics=3
	@if [ -d "$(REAL)" ]; then \
		$(BIN)/lesionseg infer $(REAL)/sct-errsm30/t2/t2.nii.gz $(REAL)/sct-errsm30/t2s/t2s.nii.gz --out $(DEMO_DIR)/real; \
		echo "real scans: $(DEMO_DIR)/real/index.html"; \
	else echo "$(REAL) not found: demo on phantoms only"; fi
	@if [ -d "$(FULLFOV)" ]; then \
		$(BIN)/lesionseg infer $(FULLFOV)/sub-01_acq-MToff_MTS.nii.gz --out $(DEMO_DIR)/real-fullfov; \
		echo "a whole-neck axial scan: $(DEMO_DIR)/real-fullfov/index.html"; \
	else echo "$(FULLFOV) not found: no whole-field-of-view scan"; fi
	$(BIN)/lesionseg infer $(DEMO_DIR)/phantoms --out $(DEMO_DIR)/pred
	$(BIN)/lesionseg evaluate --pred $(DEMO_DIR)/pred --gt $(DEMO_DIR)/phantoms --out $(DEMO_DIR)/eval
	@echo "phantoms: $(DEMO_DIR)/pred/index.html (masks and reports), $(DEMO_DIR)/eval/report.html (Dice)"

# Train your own: synth -> cord model -> cascaded lesion model -> infer on held-out phantoms -> evaluate
demo-train: $(STAMP)
	rm -rf $(DEMO_DIR)/train-demo
	$(BIN)/lesionseg synth $(DEMO_DIR)/train-demo/train --subjects 12 --contrasts T2w --seed 0
	$(BIN)/lesionseg synth $(DEMO_DIR)/train-demo/test --subjects 6 --contrasts T2w --seed 1
	$(BIN)/lesionseg train cord_t2w --data $(DEMO_DIR)/train-demo/train --out $(DEMO_DIR)/train-demo/cord
	$(BIN)/lesionseg train lesion_t2w_cascade --data $(DEMO_DIR)/train-demo/train \
		--out $(DEMO_DIR)/train-demo/lesion --set cascade.cord_model=$(DEMO_DIR)/train-demo/cord/model
	$(BIN)/lesionseg infer $(DEMO_DIR)/train-demo/test --cascade $(DEMO_DIR)/train-demo/cord/model \
		$(DEMO_DIR)/train-demo/lesion/model --out $(DEMO_DIR)/train-demo/pred
	$(BIN)/lesionseg evaluate --pred $(DEMO_DIR)/train-demo/pred --gt $(DEMO_DIR)/train-demo/test \
		--out $(DEMO_DIR)/train-demo/eval
	@echo "report: $(DEMO_DIR)/train-demo/eval/report.html"

clean:
	rm -rf $(VENV) $(DEMO_DIR) .pytest_cache
