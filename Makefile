# Whistle: one non-recursive Makefile. Each service adds services/<svc>/module.mk.
#   make            all binaries (warnings are errors)
#   make test       everything the tests need, then every suite (unit,
#                   integration, fault, interop), then the same under ASan+UBSan
#   make run        the whole system on the embedded default (private Postgres)
#   make bench      throughput/latency figures against same-run baselines
#   make clean      remove build/ (the private Postgres cluster is stopped first)
# BUILD selects the output tree; SAN=1 builds with ASan+UBSan.

BUILD ?= build
SAN ?= 0
CC ?= gcc
PKGS := libzmq libpq libprotobuf-c libuv libcrypto jansson
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
CHECK_CFLAGS := $(shell pkg-config --cflags check 2>/dev/null)
CHECK_LIBS := $(shell pkg-config --libs check 2>/dev/null)

WARN := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
        -Wpointer-arith -Wformat=2 -Werror
OPT := -O2 -g
ifeq ($(SAN),1)
OPT := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
LDSAN := -fsanitize=address,undefined
endif
CFLAGS := -std=gnu11 $(OPT) $(WARN) -MMD -MP -D_GNU_SOURCE \
          -Iservices/common -I$(BUILD)/gen $(PKG_CFLAGS)
LDFLAGS := $(LDSAN)
LDLIBS := $(PKG_LIBS) -lm

.SECONDARY:
.PHONY: FORCE all deps test test-only check-asan run bench clean
all: deps
	@$(MAKE) --no-print-directory build-all

# --- generated protobuf-c code (never committed) ---------------------------
PROTOS := $(wildcard proto/*.proto)
GEN_C := $(patsubst proto/%.proto,$(BUILD)/gen/%.pb-c.c,$(PROTOS))
TEST_PROTOS := $(wildcard tests/proto/*.proto)
TEST_GEN_C := $(patsubst tests/proto/%.proto,$(BUILD)/gen/%.pb-c.c,$(TEST_PROTOS))
GEN_H := $(GEN_C:.c=.h) $(TEST_GEN_C:.c=.h) $(BUILD)/gen/whistle_version.h
# The version every binary prints (--version, status, whistle_build_info):
# git describe at build time, or WHISTLE_VERSION=... given to make, or "unknown".
WHISTLE_VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo unknown)
$(BUILD)/gen/whistle_version.h: FORCE
	@mkdir -p $(dir $@)
	@v='#define WHISTLE_VERSION "$(WHISTLE_VERSION)"'; \
	  [ -f $@ ] && [ "$$(cat $@)" = "$$v" ] || echo "$$v" > $@
$(BUILD)/gen/%.pb-c.c $(BUILD)/gen/%.pb-c.h: proto/%.proto
	@mkdir -p $(BUILD)/gen
	protoc-c --proto_path=proto --c_out=$(BUILD)/gen $<
$(BUILD)/gen/%.pb-c.c $(BUILD)/gen/%.pb-c.h: tests/proto/%.proto
	@mkdir -p $(BUILD)/gen
	protoc-c --proto_path=tests/proto --c_out=$(BUILD)/gen $<
# Python bindings for the test drivers and interop tests.
PY_GEN := $(patsubst proto/%.proto,$(BUILD)/gen/py/%_pb2.py,$(PROTOS)) \
          $(patsubst tests/proto/%.proto,$(BUILD)/gen/py/%_pb2.py,$(TEST_PROTOS))
$(BUILD)/gen/py/%_pb2.py: proto/%.proto
	@mkdir -p $(BUILD)/gen/py
	protoc --proto_path=proto --python_out=$(BUILD)/gen/py $<
$(BUILD)/gen/py/%_pb2.py: tests/proto/%.proto
	@mkdir -p $(BUILD)/gen/py
	protoc --proto_path=tests/proto --python_out=$(BUILD)/gen/py $<
GEN_OBJ := $(patsubst %.c,%.o,$(GEN_C))
TEST_GEN_OBJ := $(patsubst %.c,%.o,$(TEST_GEN_C))
$(BUILD)/gen/%.pb-c.o: $(BUILD)/gen/%.pb-c.c
	$(CC) -std=gnu11 $(OPT) -I$(BUILD)/gen $(PKG_CFLAGS) -c $< -o $@

# --- embedded SQL: services/<x>/sql/*.sql become C arrays --------------------
$(BUILD)/tools/embed: tools/embed.c
	@mkdir -p $(dir $@)
	$(CC) -std=gnu11 -O2 -Wall -Werror $< -o $@

# --- the svc_ library --------------------------------------------------------
COMMON_SRC := $(wildcard services/common/*.c)
COMMON_SQL := $(sort $(wildcard services/common/sql/*.sql))
COMMON_OBJ := $(patsubst %.c,$(BUILD)/%.o,$(COMMON_SRC)) $(BUILD)/services/common/sql_embed.o
$(BUILD)/services/common/sql_embed.c: $(COMMON_SQL) $(BUILD)/tools/embed
	@mkdir -p $(dir $@)
	$(BUILD)/tools/embed svc_common_migrations $(COMMON_SQL) > $@
LIBSVC := $(BUILD)/lib/libsvc.a
$(LIBSVC): $(COMMON_OBJ) $(GEN_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/%.o: %.c | $(GEN_H)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@
$(BUILD)/services/%.o: $(BUILD)/services/%.c | $(GEN_H)
	$(CC) $(CFLAGS) -c $< -o $@

BINS :=
TEST_BINS :=
UNIT_TESTS :=

# --- services ----------------------------------------------------------------
-include $(wildcard services/*/module.mk)

# --- tests -------------------------------------------------------------------
UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_TESTS += $(patsubst tests/unit/%.c,$(BUILD)/tests/unit/%,$(UNIT_SRC))
$(BUILD)/tests/unit/%: $(BUILD)/tests/unit/%.o $(LIBSVC)
	$(CC) $(LDFLAGS) $< $(LIBSVC) $(CHECK_LIBS) $(LDLIBS) -o $@
$(BUILD)/tests/unit/%.o: tests/unit/%.c | $(GEN_H)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(CHECK_CFLAGS) -Itests/unit -c $< -o $@

# Integration Check programs (need the private Postgres): tests/integration/check_*.c.
ICHECK_SRC := $(wildcard tests/integration/check_*.c)
UNIT_TESTS += $(patsubst tests/integration/%.c,$(BUILD)/tests/integration/%,$(ICHECK_SRC))
$(BUILD)/tests/integration/check_%: $(BUILD)/tests/integration/check_%.o $(LIBSVC)
	$(CC) $(LDFLAGS) $< $(LIBSVC) $(CHECK_LIBS) $(LDLIBS) -o $@
$(BUILD)/tests/integration/check_%.o: tests/integration/check_%.c | $(GEN_H)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(CHECK_CFLAGS) -c $< -o $@

# Integration test programs: tests/integration/<prog>/*.c each build one binary.
ITEST_PROGS := $(notdir $(wildcard tests/integration/progs/*))
define itest_prog
$(BUILD)/tests/bin/$(1): $(patsubst %.c,$(BUILD)/%.o,$(wildcard tests/integration/progs/$(1)/*.c)) $(TEST_GEN_OBJ) $(LIBSVC)
	@mkdir -p $$(dir $$@)
	$$(CC) $$(LDFLAGS) $$^ $$(LDLIBS) -o $$@
TEST_BINS += $(BUILD)/tests/bin/$(1)
endef
$(foreach p,$(ITEST_PROGS),$(eval $(call itest_prog,$(p))))

# The tools' library: tools/lib/*.c (the hotline feed reader and pipelined
# sender, the client DEALER with CURVE), linked by every tool.
TOOLS_LIB_OBJ := $(patsubst %.c,$(BUILD)/%.o,$(wildcard tools/lib/*.c))
LIBTOOLS := $(BUILD)/lib/libtools.a
$(LIBTOOLS): $(TOOLS_LIB_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^
$(BUILD)/tools/%.o: CFLAGS += -Itools/lib

# Tools: tools/<name>/*.c each build build/bin/whistle-<name>; tools/ctl
# builds build/bin/whistlectl.
TOOL_DIRS := $(filter-out lib ctl,$(notdir $(patsubst %/,%,$(dir $(wildcard tools/*/*.c)))))
define tool_prog
$(BUILD)/bin/whistle-$(1): $(patsubst %.c,$(BUILD)/%.o,$(wildcard tools/$(1)/*.c)) $(LIBTOOLS) $(LIBSVC)
	@mkdir -p $$(dir $$@)
	$$(CC) $$(LDFLAGS) $$^ $$(LDLIBS) -o $$@
BINS += $(BUILD)/bin/whistle-$(1)
endef
$(foreach t,$(sort $(TOOL_DIRS)),$(eval $(call tool_prog,$(t))))
$(BUILD)/bin/whistlectl: $(patsubst %.c,$(BUILD)/%.o,$(wildcard tools/ctl/*.c)) $(LIBTOOLS) $(LIBSVC)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@
BINS += $(BUILD)/bin/whistlectl

# whistle-dept: its unit tests (tests/unit/test_dept_*.c) link the pure policy code.
$(BUILD)/tests/unit/test_dept_%: $(BUILD)/tests/unit/test_dept_%.o $(BUILD)/tools/dept/dept_policy.o $(LIBSVC)
	$(CC) $(LDFLAGS) $^ $(CHECK_LIBS) $(LDLIBS) -o $@
$(BUILD)/tests/unit/test_dept_%.o: CFLAGS += -Itools/dept

build-all: $(LIBSVC) $(BINS) $(TEST_BINS) $(UNIT_TESTS) $(PY_GEN)

deps:
	@bash tools/deps.sh

# make test: the plain build, then the sanitizer build of the same suites.
test: deps
	@$(MAKE) --no-print-directory test-only
	@$(MAKE) --no-print-directory check-asan

test-only: build-all
	@BUILD=$(BUILD) bash tests/run.sh

check-asan: deps
	@$(MAKE) --no-print-directory BUILD=build/asan SAN=1 build-all
	@BUILD=build/asan SAN=1 bash tests/run.sh

run: deps
	@$(MAKE) --no-print-directory build-all
	@BUILD=$(BUILD) SCENARIO=$(SCENARIO) bash tools/run.sh

bench: deps
	@$(MAKE) --no-print-directory build-all
	@BUILD=$(BUILD) bash bench/run.sh

clean:
	-@bash tools/pgdev.sh stop 2>/dev/null
	rm -rf build

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
