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

# The install is editable: Python changes need none. It is redone only when what the build reads changes
# (the project's metadata, the CUDA extension's sources): a stamp file in the virtualenv records the last one.
BUILD_INPUTS := pyproject.toml CMakeLists.txt $(shell find cpp_ext -type f 2>/dev/null)
RUNTIME      := $(VENV)/.installed-runtime
TEST_EXTRAS  := $(VENV)/.installed-test

$(BIN)/python:
	$(PYTHON) -m venv $(VENV_FLAGS) $(VENV)

$(RUNTIME): $(BIN)/python $(BUILD_INPUTS)
	$(BIN)/pip install -q -e . $(PINS)
	touch $@

# torch is installed first and pinned: the CPU wheel, not several GB of CUDA packages.
$(TEST_EXTRAS): $(BIN)/python $(BUILD_INPUTS)
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e ".[test]" $(PINS)
	touch $@ $(RUNTIME)

# Runtime only (numpy, OpenCV, ONNX Runtime): what a Jetson or kiosk installs.
demo: $(RUNTIME)
	$(BIN)/stylecam run --style $(STYLE) --input demo --output $(OUT)/demo_$(STYLE).mp4 \
	  --preview $(OUT)/demo_$(STYLE)_side_by_side.png

test: $(TEST_EXTRAS)
	$(BIN)/python -m pytest -q

# Retrain the bundled InstanceNorm styles on this CPU (recipe in scripts/train_styles.sh; hours); needs ../shared/data.
styles: $(BIN)/python
	$(BIN)/pip install -q -e ".[train]"
	mkdir -p $(OUT)/content && find $(abspath ../shared/data/content) -type f ! -name 'bsds_val_*' -exec ln -sf {} $(OUT)/content/ \;
	PATH=$(BIN):$$PATH scripts/train_styles.sh $(OUT)/content ../shared/data/styles

clean:
	rm -rf $(OUT) build
