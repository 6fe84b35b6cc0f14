# whistle-escalation: escalation notices (三函 and the notices of rating decisions,
# R-E1..R-E6). Included by the top Makefile.
ESCALATION_SRC := $(filter-out services/escalation/main.c,$(wildcard services/escalation/*.c))
ESCALATION_OBJ := $(patsubst %.c,$(BUILD)/%.o,$(ESCALATION_SRC))
ESCALATION_SQL := $(sort $(wildcard services/escalation/sql/*.sql))

# With no migration yet the table holds only its terminator: tools/embed
# accepts an empty file list.
$(BUILD)/services/escalation/sql_embed.c: $(ESCALATION_SQL) $(BUILD)/tools/embed
	@mkdir -p $(dir $@)
	$(BUILD)/tools/embed escalation_migrations $(ESCALATION_SQL) > $@

ifneq ($(wildcard services/escalation/main.c),)
$(BUILD)/bin/whistle-escalation: $(BUILD)/services/escalation/main.o $(ESCALATION_OBJ) \
                                 $(BUILD)/services/escalation/sql_embed.o $(LIBSVC)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@
BINS += $(BUILD)/bin/whistle-escalation
endif

# Unit tests of the escalation rules link its objects (not main.c).
$(BUILD)/tests/unit/test_escalation_%: $(BUILD)/tests/unit/test_escalation_%.o $(ESCALATION_OBJ) $(LIBSVC)
	$(CC) $(LDFLAGS) $^ $(CHECK_LIBS) $(LDLIBS) -o $@
$(BUILD)/tests/unit/test_escalation_%.o: CFLAGS += -Iservices/escalation
