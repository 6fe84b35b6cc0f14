# whistle-intake: the 12345 hotline feed. Included by the top Makefile.
INTAKE_SRC := $(filter-out services/intake/main.c,$(wildcard services/intake/*.c))
INTAKE_OBJ := $(patsubst %.c,$(BUILD)/%.o,$(INTAKE_SRC))
INTAKE_SQL := $(sort $(wildcard services/intake/sql/*.sql))

$(BUILD)/services/intake/sql_embed.c: $(INTAKE_SQL) $(BUILD)/tools/embed
	@mkdir -p $(dir $@)
	$(BUILD)/tools/embed intake_migrations $(INTAKE_SQL) > $@

ifneq ($(wildcard services/intake/main.c),)
$(BUILD)/bin/whistle-intake: $(BUILD)/services/intake/main.o $(INTAKE_OBJ) \
                             $(BUILD)/services/intake/sql_embed.o $(LIBSVC)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@
BINS += $(BUILD)/bin/whistle-intake
endif

# Unit tests of the intake rules link its objects (not main.c).
$(BUILD)/tests/unit/test_intake_%: $(BUILD)/tests/unit/test_intake_%.o $(INTAKE_OBJ) $(LIBSVC)
	$(CC) $(LDFLAGS) $^ $(CHECK_LIBS) $(LDLIBS) -o $@
$(BUILD)/tests/unit/test_intake_%.o: CFLAGS += -Iservices/intake
