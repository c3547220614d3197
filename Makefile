# gateway -- a Lua-scriptable memcached gateway.
#
#   make          build ./gateway
#   make run      install what is missing, build, serve gateway.lua.example
#   make test     install what is missing, build, run the whole suite
#   make bench    gateway vs twemproxy vs direct memcached, side by side
#
# Debian packages that are missing are installed with apt-get when run as
# root (see tools/deps.sh).

CC      ?= cc
LUA_PC  ?= lua5.4
OPT     ?= -O2
CFLAGS  ?= $(OPT) -g
CFLAGS  += -std=gnu11 -Wall -Wextra -Wno-unused-parameter -Wshadow -pthread \
           $(shell pkg-config --cflags $(LUA_PC) 2>/dev/null || echo -I/usr/include/lua5.4) \
           -MMD -MP
LDLIBS  += $(shell pkg-config --libs $(LUA_PC) 2>/dev/null || echo -llua5.4) \
           -lev -lxxhash -lm -pthread

ifeq ($(SANITIZE),1)
CC      := clang
CFLAGS  += -fsanitize=address,undefined -fno-omit-frame-pointer -O1
LDFLAGS += -fsanitize=address,undefined
BUILD   := build/san
else
BUILD   := build/rel
endif

CORE_SRCS := $(filter-out core/main.c,$(wildcard core/*.c))
CORE_OBJS := $(CORE_SRCS:core/%.c=$(BUILD)/%.o)
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/unit/%)

.PHONY: all deps run test unit spec bench clean

all: gateway

gateway: $(BUILD)/main.o $(BUILD)/libgw.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/libgw.a: $(CORE_OBJS)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/%.o: core/%.c | $(BUILD)
	$(CC) $(CFLAGS) -c -o $@ $<

$(BUILD)/unit/%: tests/unit/%.c $(BUILD)/libgw.a | $(BUILD)/unit
	$(CC) $(CFLAGS) -Icore $(LDFLAGS) -o $@ $< $(BUILD)/libgw.a $(LDLIBS)

$(BUILD) $(BUILD)/unit:
	mkdir -p $@

deps:
	@sh tools/deps.sh

run: deps gateway
	./gateway gateway.lua.example

unit: $(UNIT_BINS)
	@set -e; for t in $(UNIT_BINS); do $$t; done

spec: gateway
	busted --lpath='./lua/?.lua;./lua/?/init.lua;./tests/spec/?.lua' tests/spec

test: deps
	$(MAKE) unit
	$(MAKE) spec

bench: deps gateway
	sh tests/bench/bench.sh

clean:
	rm -rf build gateway

-include $(CORE_OBJS:.o=.d) $(BUILD)/main.d
