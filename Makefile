# The C core on its own: static library, C unit tests, sanitizer build.
# `pip install .` builds the same sources through setup.py; this Makefile is
# for the core's own tests (make test, make test-asan) and for development.

CC ?= gcc
SRC_DIR := src/meshcore
SRCS := $(shell find $(SRC_DIR) -name '*.c' | sort)
WARN := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wno-missing-field-initializers
BASE_CFLAGS := -std=gnu11 -D_GNU_SOURCE -I$(SRC_DIR)/include -I$(SRC_DIR) $(WARN) -g -pthread
LIBS := -lssl -lcrypto -lpcre2-8 -lnghttp2 -lpthread

# C unit tests mirror the source tree: tests/c/<dir>/test_*.c tests src/meshcore/<dir>/.
TEST_SRCS := $(sort $(wildcard tests/c/*/test_*.c))
ifneq ($(wildcard tests/c/test_*.c),)
$(error tests/c/test_*.c would not run: move them to tests/c/<dir>/ as src/meshcore/<dir>/)
endif

# Scaffolding shared by the tests (fake upstream, socket helpers): no
# test_*.c, so never run itself; an archive per flavour, linked into every test.
SUPPORT_SRCS := $(sort $(wildcard tests/c/support/*.c))
SUPPORT_HDRS := $(wildcard tests/c/support/*.h)

# Two flavours: release (O2) and sanitized (ASan + UBSan, no recovery).
RELEASE_DIR := build/c
ASAN_DIR := build/c-asan
RELEASE_CFLAGS := $(BASE_CFLAGS) -O2 -fPIC
ASAN_CFLAGS := $(BASE_CFLAGS) -O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all

.PHONY: all lib test test-asan fuzz clean
all: lib

define flavour
$(1)/%.o: %.c $$(shell find $(SRC_DIR) -name '*.h')
	@mkdir -p $$(dir $$@)
	$$(CC) $(2) -c $$< -o $$@

$(1)/libmeshcore.a: $$(patsubst %.c,$(1)/%.o,$$(SRCS))
	ar rcs $$@ $$^

$(1)/support/%.o: tests/c/support/%.c $(SUPPORT_HDRS)
	@mkdir -p $$(dir $$@)
	$$(CC) $(2) -Itests/c -c $$< -o $$@

$(1)/libtestsupport.a: $$(patsubst tests/c/support/%.c,$(1)/support/%.o,$(SUPPORT_SRCS))
	ar rcs $$@ $$^

$(1)/tests/%: tests/c/%.c tests/c/check.h $(SUPPORT_HDRS) $(1)/libtestsupport.a $(1)/libmeshcore.a
	@mkdir -p $$(dir $$@)
	$$(CC) $(2) -Itests/c $$< $(1)/libtestsupport.a $(1)/libmeshcore.a $(LIBS) $(3) -o $$@
endef

$(eval $(call flavour,$(RELEASE_DIR),$(RELEASE_CFLAGS),))
$(eval $(call flavour,$(ASAN_DIR),$(ASAN_CFLAGS),))

lib: $(RELEASE_DIR)/libmeshcore.a

RELEASE_TESTS := $(patsubst tests/c/%.c,$(RELEASE_DIR)/tests/%,$(TEST_SRCS))
ASAN_TESTS := $(patsubst tests/c/%.c,$(ASAN_DIR)/tests/%,$(TEST_SRCS))

test: $(RELEASE_TESTS)
	@set -e; for t in $^; do echo "== $$t"; $$t; done

test-asan: $(ASAN_TESTS)
	@set -e; for t in $^; do echo "== $$t (asan+ubsan)"; \
	  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 $$t; done

# libFuzzer targets (tests/fuzz/fuzz_*.c, docs/fuzzing.md): clang, ASan + UBSan.
# The core's objects get coverage instrumentation without libFuzzer's main
# (fuzzer-no-link); each target links -fsanitize=fuzzer. Objects in build/fuzz/.
FUZZ_CC ?= clang
FUZZ_DIR := build/fuzz
FUZZ_SAN := -fsanitize=address,undefined -fno-sanitize-recover=all
# The core is held to -Werror by gcc (make test); clang's warnings differ, so
# they do not fail this build (-Wno-error), but targets keep the warnings.
FUZZ_CFLAGS := $(BASE_CFLAGS) -Wno-error -O1 -fno-omit-frame-pointer $(FUZZ_SAN)
FUZZ_SRCS := $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BINS := $(patsubst tests/fuzz/%.c,$(FUZZ_DIR)/%,$(FUZZ_SRCS))

$(FUZZ_DIR)/%.o: %.c $(shell find $(SRC_DIR) -name '*.h')
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -w -fsanitize=fuzzer-no-link -c $< -o $@

$(FUZZ_DIR)/libmeshcore.a: $(patsubst %.c,$(FUZZ_DIR)/%.o,$(SRCS))
	ar rcs $@ $^

$(FUZZ_DIR)/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz_util.h $(FUZZ_DIR)/libmeshcore.a
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -Itests/fuzz $< $(FUZZ_DIR)/libmeshcore.a $(LIBS) -o $@

fuzz: $(FUZZ_BINS)

clean:
	rm -rf build/c build/c-asan build/fuzz
