# whistle-rating: complaint rankings, the nine prohibitions (九不准), credit scores, star
# ratings and unit assessment (三率). Included by the top Makefile.
RATING_SRC := $(filter-out services/rating/main.c,$(wildcard services/rating/*.c))
RATING_OBJ := $(patsubst %.c,$(BUILD)/%.o,$(RATING_SRC))
RATING_SQL := $(sort $(wildcard services/rating/sql/*.sql))

$(BUILD)/services/rating/sql_embed.c: $(RATING_SQL) $(BUILD)/tools/embed
	@mkdir -p $(dir $@)
	$(BUILD)/tools/embed rating_migrations $(RATING_SQL) > $@

ifneq ($(wildcard services/rating/main.c),)
$(BUILD)/bin/whistle-rating: $(BUILD)/services/rating/main.o $(RATING_OBJ) \
                               $(BUILD)/services/rating/sql_embed.o $(LIBSVC)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@
BINS += $(BUILD)/bin/whistle-rating
endif

# Unit tests of the rating rules link its objects (not main.c).
$(BUILD)/tests/unit/test_rating_%: $(BUILD)/tests/unit/test_rating_%.o $(RATING_OBJ) $(LIBSVC)
	$(CC) $(LDFLAGS) $^ $(CHECK_LIBS) $(LDLIBS) -o $@
$(BUILD)/tests/unit/test_rating_%.o: CFLAGS += -Iservices/rating
