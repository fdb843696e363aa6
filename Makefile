# ztunnel in C++ on io_uring: the one Makefile.
#
#   make            build build/ztunnel, the test binary and the test tools
#   make test       everything: unit tests, fuzz-corpus replays, script tests, netns e2e (as root)
#   make e2e        only the network-namespace scenarios (T=name runs one)
#   make bench      benchmarks against peers; writes docs/bench/
#   make demo       the main job on the built-in two-node netns topology
#   make asan       unit tests under ASan + UBSan (build-asan/)
#   make e2e-asan   the netns scenarios against an ASan + UBSan ztunnel (build-asan/; T=name)
#   make soak       L7 soak against the ASan + UBSan ztunnel (SOAK=1h default, SOAK=10m short;
#                   SOAK_OUT=docs/bench/soak.md); not in CI
#   make tidy       layering and banned-pattern checks
#   make format     clang-format the sources (make format-check: fail on unformatted files)
#   make deps       install the Debian packages (as root; demo and test do it themselves)
#   make install    install build/ztunnel to $(DESTDIR)$(PREFIX)/bin
#   make clean
#
# Quiet unless V=1. Sources are found by globbing: a module's `foo.cc` is library code,
# `foo_test.cc` a doctest unit test, `foo_fuzz.cc` a libFuzzer target (its corpus lives in
# tests/corpus/foo/), `tests/tools/NAME.cc` a test/bench tool built as build/tools/NAME.

BUILD     ?= build
PREFIX    ?= /usr/local
DESTDIR   ?=
CXX       ?= g++
FUZZ_CXX  ?= clang++

ifeq ($(V),1)
Q :=
else
Q := @
endif

# --- dependencies -----------------------------------------------------------------------------
# The DNS proxy's message codec: Debian's static libldns, rebuilt into one object that needs only
# libc (scripts/ldns-codec.sh says why: Debian's ldns is built against OpenSSL).
LDNS_ARCHIVE := /usr/lib/$(shell $(CXX) -print-multiarch 2>/dev/null)/libldns.a

# `make deps` installs the Debian packages (scripts/install-deps.sh, idempotent, apt-get). Parsing
# this Makefile never installs anything: `demo` and `test` run `deps` first as a step of their
# own, and a plain `make` without the packages stops with the command to run.
BUILD_GOALS := $(filter-out clean format format-check tidy help deps,$(or $(MAKECMDGOALS),all))
ifneq ($(BUILD_GOALS),)
DEPS_OK := $(shell pkg-config --exists liburing libnghttp2 nlohmann_json protobuf 2>/dev/null && \
             command -v protoc >/dev/null && \
             test -f /usr/include/doctest/doctest.h && test -d /usr/include/android/openssl && \
             test -f /usr/include/ldns/ldns.h && test -f $(LDNS_ARCHIVE) && \
             echo yes)
ifneq ($(DEPS_OK),yes)
ifeq ($(filter demo test,$(MAKECMDGOALS)),)
$(error build packages missing: run `make deps` (as root) first)
endif
endif
endif

PKGS := liburing libnghttp2 nlohmann_json
# protobuf: only the control agent (src/agent/) and its tests link it; ztunnel itself does not.
PROTOBUF_LIBS := $(shell pkg-config --libs protobuf 2>/dev/null || echo -lprotobuf)

# BoringSSL: Debian's android-libboringssl-dev by default (shared, with an rpath to its private
# library folder); a FIPS build dropped into vendor/boringssl-fips/ with BSSL_PATH=... (static).
MULTIARCH := $(shell $(CXX) -print-multiarch 2>/dev/null)
BSSL_PATH ?=
ifeq ($(BSSL_PATH),)
BSSL_INC  := /usr/include/android
BSSL_LIBDIR := /usr/lib/$(MULTIARCH)/android
BSSL_LIBS := -L$(BSSL_LIBDIR) -Wl,-rpath,$(BSSL_LIBDIR) -lssl -lcrypto
BSSL_DEFS :=
else
BSSL_INC  := $(BSSL_PATH)/include
BSSL_LIBS := $(BSSL_PATH)/lib/libssl.a $(BSSL_PATH)/lib/libcrypto.a -lpthread
BSSL_DEFS := -DZT_BSSL_VENDORED=1
endif

GIT_REV   := $(shell git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
VERSION   := 0.1.0

WARNINGS  := -Wall -Wextra -Wshadow -Wnon-virtual-dtor -Wimplicit-fallthrough -Werror
OPT       ?= -O2 -g
CPPFLAGS  := -I. -Iinclude -isystem $(BSSL_INC) -isystem $(BUILD)/gen $(shell pkg-config --cflags $(PKGS) 2>/dev/null) \
             $(BSSL_DEFS) -DZT_VERSION='"$(VERSION)"' -DZT_GIT_REVISION='"$(GIT_REV)"' \
             -DZT_LIBURING_VERSION='"$(shell pkg-config --modversion liburing 2>/dev/null)"' \
             -D_GNU_SOURCE
CXXFLAGS  := -std=c++20 $(OPT) $(WARNINGS) -fno-exceptions -pthread $(SANITIZE) $(EXTRA_CXXFLAGS)
LDFLAGS   := -pthread $(SANITIZE) $(EXTRA_LDFLAGS)
LDLIBS    := $(BSSL_LIBS) $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lz

# --- sources ------------------------------------------------------------------------------------
MODULES   := uring certs hbone src
find_lib   = $(shell find $(1) -name '*.cc' ! -name '*_test.cc' ! -name '*_fuzz.cc' 2>/dev/null | sort)
find_tests = $(shell find $(1) -name '*_test.cc' 2>/dev/null | sort)
find_fuzz  = $(shell find $(1) -name '*_fuzz.cc' 2>/dev/null | sort)

URING_SRCS := $(call find_lib,uring)
CERTS_SRCS := $(call find_lib,certs)
HBONE_SRCS := $(call find_lib,hbone)
SRC_SRCS   := $(filter-out src/main.cc src/agent/%,$(call find_lib,src))
# The control agent (build/ztunnel-agent): its library, its main, and the C++ generated at build
# time from the project's own .proto files (src/agent/proto/) into $(BUILD)/gen/.
AGENT_MAIN := $(wildcard src/agent/main.cc)
AGENT_SRCS := $(filter-out $(AGENT_MAIN),$(call find_lib,src/agent))
PROTOS     := $(sort $(wildcard src/agent/proto/*.proto))
PROTO_CCS  := $(patsubst src/agent/proto/%.proto,$(BUILD)/gen/%.pb.cc,$(PROTOS))
PROTO_HDRS := $(PROTO_CCS:.cc=.h)
PROTO_OBJS := $(patsubst $(BUILD)/gen/%.pb.cc,$(BUILD)/obj/gen/%.pb.o,$(PROTO_CCS))
SUPPORT_SRCS := $(call find_lib,tests/support)
TEST_SRCS  := tests/main.cc $(call find_tests,include uring certs hbone src tests)
TOOL_SRCS  := $(wildcard tests/tools/*.cc)
FUZZ_SRCS  := $(call find_fuzz,uring certs hbone src tests)

obj = $(patsubst %.cc,$(BUILD)/obj/%.o,$(1))

LIB_URING := $(BUILD)/lib/libzt_uring.a
LIB_CERTS := $(BUILD)/lib/libzt_certs.a
LIB_HBONE := $(BUILD)/lib/libzt_hbone.a
LIB_SRC   := $(BUILD)/lib/libzt_src.a
LIB_AGENT := $(BUILD)/lib/libzt_agent.a
LIB_SUPPORT := $(BUILD)/lib/libzt_support.a
LIB_LDNS  := $(BUILD)/lib/libzt_ldns.a
# Link order: higher layers first.
ZT_LIBS   := $(LIB_SRC) $(LIB_HBONE) $(LIB_CERTS) $(LIB_URING) $(LIB_LDNS)

BIN        := $(BUILD)/ztunnel
AGENT_BIN  := $(if $(AGENT_MAIN),$(BUILD)/ztunnel-agent)
TEST_BIN   := $(BUILD)/zt_tests
TOOLS      := $(patsubst tests/tools/%.cc,$(BUILD)/tools/%,$(TOOL_SRCS))
FUZZ_NAMES := $(notdir $(patsubst %_fuzz.cc,%,$(FUZZ_SRCS)))
REPLAYS    := $(patsubst %,$(BUILD)/replay/%,$(FUZZ_NAMES))
FUZZERS    := $(patsubst %,$(BUILD)/fuzz/%,$(FUZZ_NAMES))

.PHONY: all deps test e2e e2e-asan soak bench demo asan tidy format format-check install clean check-linkage fuzz fuzzers help
.DEFAULT_GOAL := all

all: $(BIN) $(AGENT_BIN) $(TEST_BIN) $(TOOLS) $(REPLAYS) check-linkage

help:
	@sed -n '3,18p' Makefile | sed 's/^# \{0,1\}//'

# --- compile --------------------------------------------------------------------------------------
$(BUILD)/obj/%.o: %.cc
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CXX     $<")
	$(Q)$(CXX) $(CPPFLAGS) $(CXXFLAGS) -MMD -MP -c $< -o $@

# Unit tests may use doctest's REQUIRE, which needs exceptions; the code under test never does.
$(BUILD)/obj/%_test.o: CXXFLAGS += -fexceptions
$(BUILD)/obj/tests/main.o: CXXFLAGS += -fexceptions

define make_lib
$(1): $(call obj,$(2))
	@mkdir -p $$(dir $$@)
	@$$(if $$(Q),echo "  AR      $$@")
	$$(Q)rm -f $$@ && ar rcs $$@ $$^ $$(if $(2),,$$(BUILD)/lib/empty.o)
endef

# An archive with no members is still a valid (empty) archive; keep one object in it so every
# module can be linked before it has code.
$(BUILD)/lib/empty.o:
	@mkdir -p $(dir $@)
	$(Q)echo 'namespace zt { int zt_empty_archive_member = 0; }' | $(CXX) -x c++ -c - -o $@

$(eval $(call make_lib,$(LIB_URING),$(URING_SRCS)))
$(eval $(call make_lib,$(LIB_CERTS),$(CERTS_SRCS)))
$(eval $(call make_lib,$(LIB_HBONE),$(HBONE_SRCS)))
$(eval $(call make_lib,$(LIB_SRC),$(SRC_SRCS)))
$(LIB_AGENT): $(PROTO_OBJS) $(call obj,$(AGENT_SRCS)) | $(BUILD)/lib/empty.o
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  AR      $@")
	$(Q)rm -f $@ && ar rcs $@ $^ $(if $(PROTO_OBJS)$(AGENT_SRCS),,$(BUILD)/lib/empty.o)

# Generated protobuf code: protoc 3.21 (Debian's protobuf-compiler), compiled without our warning
# set (it is not our code) but with the same language and sanitizer flags.
$(BUILD)/gen/%.pb.cc $(BUILD)/gen/%.pb.h: src/agent/proto/%.proto
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  PROTOC  $<")
	$(Q)protoc -Isrc/agent/proto --cpp_out=$(BUILD)/gen $<

# Keep the generated sources (make would delete them as intermediates): debuggers and readers
# want them.
.SECONDARY: $(PROTO_CCS) $(PROTO_HDRS)

$(BUILD)/obj/gen/%.pb.o: $(BUILD)/gen/%.pb.cc
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CXX     $<")
	$(Q)$(CXX) $(CPPFLAGS) -std=c++20 $(OPT) -fno-exceptions -pthread $(SANITIZE) -MMD -MP -c $< -o $@

# Anything under src/agent/ (and its tests) may include generated headers: make them first.
$(call obj,$(AGENT_MAIN) $(AGENT_SRCS) $(call find_tests,src/agent) $(call find_fuzz,src/agent)): | $(PROTO_HDRS)
# So may the test and bench tools (tests/tools/translate_bench.cc includes src/agent/translate.h).
$(call obj,$(TOOL_SRCS)): | $(PROTO_HDRS)
$(eval $(call make_lib,$(LIB_SUPPORT),$(SUPPORT_SRCS)))

$(LIB_URING) $(LIB_CERTS) $(LIB_HBONE) $(LIB_SRC) $(LIB_SUPPORT): | $(BUILD)/lib/empty.o

# ldns without OpenSSL, as an archive of one member (linked only where src/dns/ is).
$(LIB_LDNS): $(LDNS_ARCHIVE) scripts/ldns-codec.sh
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LDNS    $@")
	$(Q)scripts/ldns-codec.sh $(LDNS_ARCHIVE) $(BUILD)/lib/ldns_codec.o
	$(Q)rm -f $@ && ar rcs $@ $(BUILD)/lib/ldns_codec.o

# --- link -----------------------------------------------------------------------------------------
$(BIN): $(call obj,src/main.cc) $(ZT_LIBS)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CXX) $(LDFLAGS) -o $@ $(call obj,src/main.cc) $(ZT_LIBS) $(LDLIBS)

$(BUILD)/ztunnel-agent: $(call obj,$(AGENT_MAIN)) $(LIB_AGENT) $(ZT_LIBS)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CXX) $(LDFLAGS) -o $@ $(call obj,$(AGENT_MAIN)) $(LIB_AGENT) $(ZT_LIBS) $(LDLIBS) \
	    $(PROTOBUF_LIBS)

$(TEST_BIN): $(call obj,$(TEST_SRCS)) $(LIB_SUPPORT) $(LIB_AGENT) $(ZT_LIBS)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CXX) $(LDFLAGS) -o $@ $(call obj,$(TEST_SRCS)) $(LIB_SUPPORT) $(LIB_AGENT) $(ZT_LIBS) \
	    $(LDLIBS) $(PROTOBUF_LIBS)

$(BUILD)/tools/%: $(BUILD)/obj/tests/tools/%.o $(LIB_SUPPORT) $(LIB_AGENT) $(ZT_LIBS)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CXX) $(LDFLAGS) -o $@ $< $(LIB_SUPPORT) $(LIB_AGENT) $(ZT_LIBS) $(LDLIBS) $(PROTOBUF_LIBS)

# Fuzz targets, replay build: the target linked with a plain main that runs every file of its
# corpus once, so `make test` replays corpora without a fuzzer (Envoy practice).
.SECONDEXPANSION:
fuzz_obj = $(call obj,$(filter %/$(1)_fuzz.cc,$(FUZZ_SRCS)))

$(BUILD)/replay/%: $$(call fuzz_obj,$$*) $(call obj,tests/fuzz_replay_main.cc) $(LIB_SUPPORT) $(ZT_LIBS)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CXX) $(LDFLAGS) -o $@ $(call fuzz_obj,$*) $(call obj,tests/fuzz_replay_main.cc) \
	    $(LIB_SUPPORT) $(ZT_LIBS) $(LDLIBS)

# Real fuzzers (clang + libFuzzer + ASan): `make fuzz`, then build/fuzz/NAME tests/corpus/NAME.
fuzz:
	$(Q)$(MAKE) --no-print-directory BUILD=build-fuzz CXX=$(FUZZ_CXX) \
	    SANITIZE='-fsanitize=fuzzer-no-link,address,undefined' fuzzers

fuzzers: $(FUZZERS)

$(BUILD)/fuzz/%: $$(call fuzz_obj,$$*) $(LIB_SUPPORT) $(ZT_LIBS)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CXX) $(LDFLAGS) -fsanitize=fuzzer -o $@ $(call fuzz_obj,$*) \
	    $(LIB_SUPPORT) $(ZT_LIBS) $(LDLIBS)

# No OpenSSL in either process: libssl.so.3 and BoringSSL's symbols clash, and a FIPS build must
# not run a second TLS library (the agent's gRPC is our own for that reason).
check-linkage: $(BIN) $(AGENT_BIN)
	$(Q)for bin in $(BIN) $(AGENT_BIN); do \
	    if ldd $$bin | grep -q 'libssl.so.3\|libcrypto.so.3'; then \
	        echo "check-linkage: $$bin links OpenSSL's libssl.so.3; BoringSSL only" >&2; exit 1; fi; \
	done

# --- run ------------------------------------------------------------------------------------------
# demo and test install what is missing first (a separate make, so the build that follows sees the
# packages), then build, then run.
deps:
	$(Q)scripts/install-deps.sh

test:
	$(Q)scripts/install-deps.sh
	$(Q)$(MAKE) --no-print-directory all
	$(Q)BUILD=$(BUILD) scripts/run-tests.sh

e2e: all
	$(Q)BUILD=$(BUILD) scripts/e2e/run.sh $(T)

bench: all
	$(Q)BUILD=$(BUILD) scripts/bench/run.sh $(T)

demo:
	$(Q)scripts/install-deps.sh
	$(Q)$(MAKE) --no-print-directory all
	$(Q)BUILD=$(BUILD) scripts/demo.sh

asan:
	$(Q)$(MAKE) --no-print-directory $(ASAN_BUILD_FLAGS) build-asan/zt_tests
	$(Q)ASAN_OPTIONS=detect_leaks=1 build-asan/zt_tests

# The e2e scenarios against sanitized binaries: every ztunnel a scenario starts runs under ASan
# (leaks included) and UBSan; a sanitizer report written during a scenario fails it
# (scripts/e2e-asan.sh).
ASAN_BUILD_FLAGS = BUILD=build-asan OPT='-O1 -g -fno-omit-frame-pointer' \
    SANITIZE='-fsanitize=address,undefined -fno-sanitize-recover=undefined'

e2e-asan:
	$(Q)$(MAKE) --no-print-directory $(ASAN_BUILD_FLAGS) build-asan/ztunnel build-asan/tools/zt_relay
	$(Q)scripts/e2e-asan.sh $(T)

# The soak (scripts/soak.sh) against the sanitized ztunnel; its load is Python (tests/peers/).
SOAK ?= 1h
SOAK_OUT ?= docs/bench/soak.md
soak:
	$(Q)$(MAKE) --no-print-directory $(ASAN_BUILD_FLAGS) build-asan/ztunnel
	$(Q)SOAK_OUT=$(SOAK_OUT) scripts/soak.sh $(SOAK)

tidy:
	$(Q)scripts/tidy.sh
	$(Q)scripts/check-citations.sh

# clang-format 16 is the pinned formatter (`InsertBraces` needs >= 15); format-check fails on any
# file it would change.
CLANG_FORMAT ?= clang-format-16
FORMAT_FILES = $(shell find include uring certs hbone src tests -name '*.h' -o -name '*.cc' | sort)
format:
	$(Q)$(CLANG_FORMAT) -i $(FORMAT_FILES)

format-check:
	$(Q)$(CLANG_FORMAT) --dry-run -Werror $(FORMAT_FILES)

install: $(BIN) $(AGENT_BIN)
	$(Q)install -d $(DESTDIR)$(PREFIX)/bin
	$(Q)install -m 0755 $(BIN) $(DESTDIR)$(PREFIX)/bin/ztunnel
	$(Q)$(if $(AGENT_BIN),install -m 0755 $(AGENT_BIN) $(DESTDIR)$(PREFIX)/bin/ztunnel-agent)

clean:
	$(Q)rm -rf build build-asan build-fuzz

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
