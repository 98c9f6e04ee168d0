# Two set-up commands (see README): `make demo` and `make test`. Each works on a fresh machine.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
OUT    ?= out
STYLE  ?= candy

.PHONY: demo test styles clean

# A Jetson keeps TensorRT and OpenCV (built with GStreamer, for NumPy 1.x) in the system's site-packages.
JETSON     := $(wildcard /etc/nv_tegra_release)
VENV_FLAGS := $(if $(JETSON),--system-site-packages)
PINS       := $(if $(JETSON),"numpy<2")

$(BIN)/python:
	$(PYTHON) -m venv $(VENV_FLAGS) $(VENV)

# Runtime only (numpy, OpenCV, ONNX Runtime): what a Jetson or kiosk installs.
demo: $(BIN)/python
	$(BIN)/pip install -q -e . $(PINS)
	$(BIN)/stylecam run --style $(STYLE) --input demo --output $(OUT)/demo_$(STYLE).mp4 \
	  --preview $(OUT)/demo_$(STYLE)_side_by_side.png

# torch is installed first and pinned: the CPU wheel, not several GB of CUDA packages.
test: $(BIN)/python
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e ".[test]" $(PINS)
	$(BIN)/python -m pytest -q

# Retrain the bundled styles on a GPU (recipe in scripts/train_styles.sh); needs ../shared/data.
styles: $(BIN)/python
	$(BIN)/pip install -q -e ".[train]"
	PATH=$(BIN):$$PATH scripts/train_styles.sh ../shared/data/content ../shared/data/styles $(OUT)/styles

clean:
	rm -rf $(OUT) build
