# Thin wrapper over CMake/ctest (the real build is CMakeLists.txt).
#   make          build (build/)
#   make test     install missing Debian packages, build, run every suite, then every suite
#                 again under ASan+UBSan (build-asan/, clang)
#   make demo     the main job on the emulator (see README)
#   make fuzz     short libFuzzer runs of every target (build-fuzz/, clang)
#   make bench    benchmarks (results recorded under bench/results/)
JOBS ?= 2
BUILD ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 20
PREFIX ?= /usr/local

.PHONY: all build deps test test-fast test-asan demo fuzz bench install clean format

all: build

deps:
	./scripts/deps

$(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_INSTALL_PREFIX=$(PREFIX)

build: $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j$(JOBS)

test: deps
	$(MAKE) build
	cd $(BUILD) && ctest -j$(JOBS) --output-on-failure
	$(MAKE) test-asan

test-fast: build
	cd $(BUILD) && ctest -j$(JOBS) --output-on-failure -L unit

test-asan:
	cmake -S . -B $(ASAN_BUILD) -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Debug \
	  -DLUNNEL_SANITIZE=address,undefined
	cmake --build $(ASAN_BUILD) -j$(JOBS)
	cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1 ctest -j$(JOBS) --output-on-failure

demo: deps build
	./scripts/demo $(BUILD)

fuzz:
	cmake -S . -B $(FUZZ_BUILD) -DCMAKE_C_COMPILER=clang -DLUNNEL_FUZZ=ON \
	  -DLUNNEL_SANITIZE=address,undefined
	cmake --build $(FUZZ_BUILD) -j$(JOBS)
	./scripts/fuzz $(FUZZ_BUILD) $(FUZZ_SECONDS)

bench: build
	./bench/run $(BUILD)

install: build
	cmake --install $(BUILD) --prefix $(PREFIX)

format:
	git ls-files '*.c' '*.h' | xargs clang-format -i

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD)
