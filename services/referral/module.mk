# whistle-referral: referral steps between units (吹哨报到). Included by the top Makefile.
REFERRAL_SRC := $(filter-out services/referral/main.c,$(wildcard services/referral/*.c))
REFERRAL_OBJ := $(patsubst %.c,$(BUILD)/%.o,$(REFERRAL_SRC))
REFERRAL_SQL := $(sort $(wildcard services/referral/sql/*.sql))

$(BUILD)/services/referral/sql_embed.c: $(REFERRAL_SQL) $(BUILD)/tools/embed
	@mkdir -p $(dir $@)
	$(BUILD)/tools/embed referral_migrations $(REFERRAL_SQL) > $@

ifneq ($(wildcard services/referral/main.c),)
$(BUILD)/bin/whistle-referral: $(BUILD)/services/referral/main.o $(REFERRAL_OBJ) \
                               $(BUILD)/services/referral/sql_embed.o $(LIBSVC)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@
BINS += $(BUILD)/bin/whistle-referral
endif

# Unit tests of the referral rules link its objects (not main.c).
$(BUILD)/tests/unit/test_referral_%: $(BUILD)/tests/unit/test_referral_%.o $(REFERRAL_OBJ) $(LIBSVC)
	$(CC) $(LDFLAGS) $^ $(CHECK_LIBS) $(LDLIBS) -o $@
$(BUILD)/tests/unit/test_referral_%.o: CFLAGS += -Iservices/referral
