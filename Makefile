# gateway -- a Lua-scriptable memcached gateway.
#
#   make          build ./gateway
#   make run      install what is missing, build, serve gateway.lua.example
#   make test     install what is missing, build, run the whole suite
#   make bench    gateway vs twemproxy vs direct memcached, side by side
#
# Debian packages that are missing are installed with apt-get when run as
# root (the deps target); a non-root user is told what to install.

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
TOOL_SRCS := $(wildcard tests/tools/*.c)
TOOL_BINS := $(TOOL_SRCS:tests/tools/%.c=$(BUILD)/tools/%)

.PHONY: all gateway deps run test unit spec bench clean

all: gateway

# ./gateway is a copy of the binary of the last build mode asked for, so
# switching between SANITIZE=1 and a release build always takes effect.
gateway: $(BUILD)/gateway
	@cmp -s $< $@ || cp $< $@

$(BUILD)/gateway: $(BUILD)/main.o $(BUILD)/libgw.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/libgw.a: $(CORE_OBJS)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/%.o: core/%.c | $(BUILD)
	$(CC) $(CFLAGS) -c -o $@ $<

$(BUILD)/unit/%: tests/unit/%.c $(BUILD)/libgw.a | $(BUILD)/unit
	$(CC) $(CFLAGS) -Icore $(LDFLAGS) -o $@ $< $(BUILD)/libgw.a $(LDLIBS)

$(BUILD)/tools/%: tests/tools/%.c $(BUILD)/libgw.a | $(BUILD)/tools
	$(CC) $(CFLAGS) -Icore $(LDFLAGS) -o $@ $< $(BUILD)/libgw.a $(LDLIBS)

$(BUILD) $(BUILD)/unit $(BUILD)/tools:
	mkdir -p $@

DEB_PKGS := build-essential pkg-config liblua5.4-dev lua5.4 libev-dev \
            libxxhash-dev lua-busted lua-socket memcached python3 \
            python3-memcache python3-pymemcache libmemcached-tools nutcracker

deps:
	@missing=""; for p in $(DEB_PKGS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" \
	    || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "deps: installing$$missing"; \
	    export DEBIAN_FRONTEND=noninteractive; \
	    apt-get update -qq && apt-get install -y -qq --no-install-recommends $$missing; \
	  else \
	    echo "deps: missing Debian packages:$$missing (run make as root, or apt-get install them)" >&2; \
	    exit 1; \
	  fi; \
	fi

run: deps gateway
	./gateway gateway.lua.example

unit: $(UNIT_BINS)
	@set -e; for t in $(UNIT_BINS); do $$t; done

spec: gateway $(TOOL_BINS)
	GATEWAY_TOOLS=$(BUILD)/tools busted --lpath='./lua/?.lua;./lua/?/init.lua;./tests/spec/?.lua' tests/spec

test: deps
	$(MAKE) unit
	$(MAKE) spec

bench: deps gateway
	sh tests/bench/bench.sh

clean:
	rm -rf build gateway

-include $(CORE_OBJS:.o=.d) $(BUILD)/main.d
