# Builds BearSSL's sources into one static archive with BearSSL's own flags
# (never the relay's -Werror). Called by the top Makefile after fetching.
SRCS := $(wildcard vendor/bearssl/src/*/*.c)
OBJS := $(SRCS:vendor/bearssl/src/%.c=$(OUT)/%.o)

$(LIB): $(OBJS)
	rm -f $@
	ar rcs $@ $(OBJS)

$(OUT)/%.o: vendor/bearssl/src/%.c
	@mkdir -p $(dir $@)
	$(CC) $(BR_CFLAGS) -c -o $@ $<
