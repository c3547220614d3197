# gateway -- a Lua-scriptable memcached gateway.
#
#   make          build ./gateway
#   make run      install what is missing, build, serve gateway.lua.example
#   make test     install what is missing, build, run the whole suite
#   make test SANITIZE=1
#                 the same with an ASan+UBSan build (clang); any sanitizer
#                 report in a gateway's log fails the run
#   make bench    gateway vs twemproxy vs direct memcached, side by side,
#                 plain and over TLS, and a table of the performance goals
#                 (BENCH_QUICK=1: a smoke run; knobs at the top of
#                 tests/bench/bench.sh)
#   make install  the binary, the Lua library, the example config (only if
#                 none is there yet) and a systemd unit; PREFIX (default
#                 /usr/local) and DESTDIR as usual.  make uninstall undoes
#                 it, the config excepted
#   make fuzz     libFuzzer (clang, ASan+UBSan) on the request and reply
#                 parsers (text and meta) and on the path client bytes ->
#                 backend bytes,
#                 FUZZ_SECONDS (default 60) each, from a copy of the seeds
#                 in tests/fuzz/corpus; fails on a crash, whose input is
#                 left in build/fuzz/<target>-crash-*
#
# Debian packages that are missing are installed with apt-get when run as
# root (the deps target); a non-root user is told what to install.  make
# spec also installs the Node clients the specs drive (memjs, memcached)
# from npm into build/node, once.

CC      ?= cc
LUA_PC  ?= lua5.4
OPT     ?= -O2
CFLAGS  ?= $(OPT) -g
CFLAGS  += -std=gnu11 -Wall -Wextra -Wno-unused-parameter -Wshadow -pthread -Icore \
           $(shell pkg-config --cflags $(LUA_PC) 2>/dev/null || echo -I/usr/include/lua5.4) \
           -MMD -MP
LDLIBS  += $(shell pkg-config --libs $(LUA_PC) 2>/dev/null || echo -llua5.4) \
           -lev -lxxhash -lmicrohttpd -lgnutls -lssl -lcrypto -lcrypt -lm -pthread

ifeq ($(SANITIZE),1)
CC      := clang
CFLAGS  += -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer -O1
LDFLAGS += -fsanitize=address,undefined
BUILD   := build/san
else
BUILD   := build/rel
endif

# core/<layer>/<module>.c; see README "Layout".  main.c is the program.
CORE_SRCS := $(filter-out core/server/main.c,$(wildcard core/*/*.c))
CORE_OBJS := $(CORE_SRCS:core/%.c=$(BUILD)/%.o)
# The layers up to proxy/ link alone, without Lua or the worker: the unit
# tests link only those, which is what keeps the middle testable.
LOW_LAYERS := base codec place store rt proxy
LOW_OBJS  := $(foreach l,$(LOW_LAYERS),$(filter $(BUILD)/$(l)/%,$(CORE_OBJS)))
LOW_LIBS  := -lev -lxxhash -lssl -lcrypto -lcrypt -lm -pthread
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/unit/%)
TOOL_SRCS := $(wildcard tests/tools/*.c)
TOOL_BINS := $(TOOL_SRCS:tests/tools/%.c=$(BUILD)/tools/%)

.PHONY: all gateway deps run test layers unit spec bench fuzz clean install uninstall

# Where make install puts things.  DATADIR is compiled into the binary (it
# finds its Lua library there); the config is in /etc whatever the PREFIX,
# where an administrator looks for it.
PREFIX     ?= /usr/local
BINDIR     ?= $(PREFIX)/bin
DATADIR    ?= $(PREFIX)/share/gateway
SYSCONFDIR ?= /etc
CONFDIR    ?= $(SYSCONFDIR)/gateway
UNITDIR    ?= $(PREFIX)/lib/systemd/system

all: gateway

# ./gateway is a copy of the binary of the last build mode asked for, so
# switching between SANITIZE=1 and a release build always takes effect.
gateway: $(BUILD)/gateway
	@cmp -s $< $@ || { cp $< $@.tmp && mv -f $@.tmp $@; }

$(BUILD)/gateway: $(BUILD)/server/main.o $(BUILD)/libgw.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/libgw.a: $(CORE_OBJS)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/libgw-low.a: $(LOW_OBJS)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/%.o: core/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<

# main.o bakes DATADIR in; the stamp changes only when DATADIR does, so
# make install PREFIX=/opt/gw rebuilds it and an unchanged one does not.
$(BUILD)/server/main.o: CFLAGS += -DGW_LUA_DIR='"$(DATADIR)"'
$(BUILD)/server/main.o: $(BUILD)/lua-dir.stamp
$(BUILD)/lua-dir.stamp: FORCE
	@mkdir -p $(dir $@)
	@echo '$(DATADIR)' | cmp -s - $@ || echo '$(DATADIR)' >$@
FORCE:

# Unit tests of the Lua host's parts (test_lua_*.c) need Lua: they link the
# whole core.  (GNU make picks this rule over the next: its stem is shorter.)
$(BUILD)/unit/test_lua_%: tests/unit/test_lua_%.c $(BUILD)/libgw.a | $(BUILD)/unit
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/libgw.a $(LDLIBS)

$(BUILD)/unit/%: tests/unit/%.c $(BUILD)/libgw-low.a | $(BUILD)/unit
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/libgw-low.a $(LOW_LIBS)

$(BUILD)/tools/%: tests/tools/%.c $(BUILD)/libgw.a | $(BUILD)/tools
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/libgw.a $(LDLIBS)

$(BUILD) $(BUILD)/unit $(BUILD)/tools:
	mkdir -p $@

# libgnutls28-dev: Debian's libmicrohttpd does TLS with GnuTLS, and the
# admin listener checks client certificates with it (admin_http.c).
# systemd is there for systemd-analyze, which checks the installed unit
# (tests/spec/install_spec.lua); a Debian host has it already.  The binary
# protocol's real clients (tests/spec/binary_clients_spec.lua): Dalli 3.0.6
# (ruby-dalli), pylibmc, memjs (Node, from npm: below); whois has mkpasswd
# for the users file of an auth listener; sasl2-bin (saslpasswd2) and
# libsasl2-modules (PLAIN, only recommended by libsasl2-2) for the
# control's memcached -S.  The placement specs' real clients
# (tests/spec/placement_*_spec.lua): PHP's Memcached, gomemcache (built
# offline in GOPATH mode), spymemcached on a headless JDK.
DEB_PKGS := build-essential pkg-config liblua5.4-dev lua5.4 libev-dev \
            libxxhash-dev libmicrohttpd-dev libgnutls28-dev libcrypt-dev libssl-dev openssl prometheus lua-busted lua-dkjson lua-socket memcached python3 \
            python3-memcache python3-pymemcache libmemcached-tools nutcracker \
            valgrind systemd \
            ruby ruby-dalli python3-pylibmc nodejs whois sasl2-bin libsasl2-modules \
            php-cli php-memcached golang-go golang-github-bradfitz-gomemcache-dev \
            default-jdk-headless libspymemcached-java
ifneq ($(filter 1,$(SANITIZE))$(filter fuzz,$(MAKECMDGOALS)),)
DEB_PKGS += clang libclang-rt-dev
endif
# Commands wanted whatever package brings them, as command:package.  npm
# comes with NodeSource's nodejs, which conflicts with Debian's npm; so
# Debian's is installed only when there is no npm command once the
# packages above are in.
DEB_CMDS := npm:npm

deps:
	@missing=""; for p in $(DEB_PKGS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" \
	    || missing="$$missing $$p"; done; \
	cmds=""; for c in $(DEB_CMDS); do \
	  command -v $${c%%:*} >/dev/null 2>&1 || cmds="$$cmds $${c#*:}"; done; \
	if [ -n "$$missing$$cmds" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    export DEBIAN_FRONTEND=noninteractive; \
	    if [ -n "$$missing" ]; then \
	      echo "deps: installing$$missing"; \
	      apt-get update -qq && apt-get install -y -qq --no-install-recommends $$missing || exit 1; \
	    fi; \
	    cmds=""; for c in $(DEB_CMDS); do \
	      command -v $${c%%:*} >/dev/null 2>&1 || cmds="$$cmds $${c#*:}"; done; \
	    if [ -n "$$cmds" ]; then \
	      echo "deps: installing$$cmds"; \
	      { [ -n "$$missing" ] || apt-get update -qq; } \
	        && apt-get install -y -qq --no-install-recommends $$cmds || exit 1; \
	    fi; \
	  else \
	    echo "deps: missing Debian packages:$$missing$$cmds (run make as root, or apt-get install them)" >&2; \
	    exit 1; \
	  fi; \
	fi

# The Node clients the specs drive are not packaged by Debian: npm installs
# the pinned versions into build/node (the specs set NODE_PATH to its
# node_modules) once, when the stamp for this list is missing, as root or
# as a user who can write build/.  memjs: the binary protocol with SASL
# (binary_clients_spec); memcached (with hashring): its own placement
# (placement_node_memcached_spec).  make run never needs them.
NODE_PKGS  := memjs@1.3.2 memcached@2.2.2
empty      :=
space      := $(empty) $(empty)
NODE_STAMP := build/node/$(subst @,-,$(subst $(space),+,$(NODE_PKGS))).stamp
$(NODE_STAMP):
	@mkdir -p build/node 2>/dev/null; \
	if [ "$$(id -u)" = 0 ] || [ -w build/node ]; then \
	  echo "deps: npm install $(NODE_PKGS) into build/node"; \
	  npm install --prefix build/node --no-save --no-package-lock --no-audit --no-fund \
	    $(NODE_PKGS) && touch $@; \
	else \
	  echo "deps: cannot write build/node: npm install --prefix build/node $(NODE_PKGS)" >&2; \
	  exit 1; \
	fi

run: deps gateway
	./gateway gateway.lua.example

unit: $(UNIT_BINS)
	@set -e; for t in $(UNIT_BINS); do $$t; done

# Each run starts with an empty tests/tmp (the specs' logs and configs), so
# the sanitizer check reads only this run's gateway logs.
spec: gateway $(TOOL_BINS) $(NODE_STAMP)
	rm -rf tests/tmp
	GATEWAY_SANITIZE=$(SANITIZE) GATEWAY_TOOLS=$(BUILD)/tools busted --lpath='./lua/?.lua;./lua/?/init.lua;./tests/spec/?.lua' tests/spec
	@if grep -rl --include='*.log' -E 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' tests/tmp 2>/dev/null; then \
	  echo "spec: sanitizer reports in the logs above" >&2; exit 1; fi

# core/ keeps its layers: no include goes up or sideways (tests/layers.lua).
layers:
	lua5.4 tests/layers.lua core

test: deps
	$(MAKE) layers
	$(MAKE) unit
	$(MAKE) spec

# The bench's own load generator (open and closed loop, latency
# percentiles, TLS with OpenSSL (libssl-dev); tests/bench/loadgen.c):
# always optimized and never sanitized, whatever SANITIZE says, so it is
# not what limits a run.
LOADGEN := build/bench/loadgen
$(LOADGEN): tests/bench/loadgen.c
	@mkdir -p $(dir $@)
	$(CC) -O2 -g -std=gnu11 -Wall -Wextra -Wno-unused-parameter -Wshadow -o $@ $< -lssl -lcrypto

bench: deps gateway $(LOADGEN)
	LOADGEN=$(LOADGEN) sh tests/bench/bench.sh

# Built with clang's libFuzzer.  The parsers alone: core/codec/<target>.c (and
# the reply table) and tests/fuzz/fuzz_<target>.c.  forward (client bytes ->
# backend bytes) links the layers up to proxy/, as the unit tests do, built
# with the fuzz flags into build/fuzz/low/.  Each run starts from a fresh
# copy of the seed corpus, so new inputs never land in the repo.
FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 60
FUZZ_DIR     := build/fuzz
FUZZ_PARSERS := proto resp meta meta_resp binary
FUZZ_NAMES   := $(FUZZ_PARSERS) forward
FUZZ_BINS    := $(FUZZ_NAMES:%=$(FUZZ_DIR)/fuzz_%)
FUZZ_LOW_OBJS := $(patsubst core/%.c,$(FUZZ_DIR)/low/%.o,\
                   $(foreach l,$(LOW_LAYERS),$(wildcard core/$(l)/*.c)))
FUZZ_OBJS    := $(FUZZ_PARSERS:%=$(FUZZ_DIR)/%.o) $(FUZZ_DIR)/reply.o $(FUZZ_LOW_OBJS)
FUZZ_CFLAGS  := -std=gnu11 -g -O1 -fno-omit-frame-pointer -Wall -Wextra \
                -Wno-unused-parameter -Icore -MMD -MP \
                -fsanitize=address,undefined -fno-sanitize-recover=all

$(FUZZ_DIR)/%.o: core/codec/%.c | $(FUZZ_DIR)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c -o $@ $<

$(FUZZ_DIR)/low/%.o: core/%.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -pthread -fsanitize=fuzzer-no-link -c -o $@ $<

# The link rules name only sources and objects: -MMD adds the headers to $^.
$(FUZZ_DIR)/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_DIR)/%.o $(FUZZ_DIR)/reply.o | $(FUZZ_DIR)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $(filter %.c %.o,$^)

# The meta parsers lean on proto.c (the shared line search, key checks) and
# base/base64.c; the reply parser on meta.c (flag lookup) and resp.c (the
# data block).
$(FUZZ_DIR)/fuzz_meta: $(FUZZ_DIR)/proto.o $(FUZZ_DIR)/low/base/base64.o
$(FUZZ_DIR)/fuzz_meta_resp: $(FUZZ_DIR)/meta.o $(FUZZ_DIR)/proto.o $(FUZZ_DIR)/resp.o \
                            $(FUZZ_DIR)/low/base/base64.o

$(FUZZ_DIR)/fuzz_forward: tests/fuzz/fuzz_forward.c $(FUZZ_LOW_OBJS) | $(FUZZ_DIR)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $(filter %.c %.o,$^) $(LOW_LIBS)

$(FUZZ_DIR):
	mkdir -p $@

.SECONDARY: $(FUZZ_OBJS)

fuzz: deps $(FUZZ_BINS)
	@set -e; for t in $(FUZZ_NAMES); do \
	  rm -rf $(FUZZ_DIR)/corpus-$$t && mkdir -p $(FUZZ_DIR)/corpus-$$t; \
	  cp tests/fuzz/corpus/$$t/* $(FUZZ_DIR)/corpus-$$t/; \
	  echo "fuzz: $$t for $(FUZZ_SECONDS)s (log: $(FUZZ_DIR)/$$t.log)"; \
	  if $(FUZZ_DIR)/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) -timeout=10 \
	       -print_final_stats=1 -artifact_prefix=$(FUZZ_DIR)/$$t- \
	       $(FUZZ_DIR)/corpus-$$t >$(FUZZ_DIR)/$$t.log 2>&1; then \
	    grep -E '^(Done|stat::number_of_executed_units|stat::new_units_added)' \
	      $(FUZZ_DIR)/$$t.log | sed "s/^/fuzz: $$t: /"; \
	  else \
	    tail -n 40 $(FUZZ_DIR)/$$t.log; \
	    echo "fuzz: $$t FAILED; the input is in $(FUZZ_DIR)/$$t-*" >&2; exit 1; \
	  fi; \
	done

# The binary, lua/ as DATADIR (and scripts/*.lua as DATADIR/scripts, where
# require looks next to the library, as in this tree, with users.example,
# the demo users file tenants.lua names), the example config
# unless a config is already there, and the unit made from
# scripts/gateway.service with this PREFIX's paths.  Modes are explicit,
# not left to root's umask: the service's own user must read it all.
# install(1) replaces the binary by a new file, so a running gateway is
# not disturbed.
install: gateway
	install -d -m 0755 $(DESTDIR)$(BINDIR) $(DESTDIR)$(DATADIR)/scripts $(DESTDIR)$(CONFDIR) $(DESTDIR)$(UNITDIR)
	install -m 0755 $(BUILD)/gateway $(DESTDIR)$(BINDIR)/gateway
	for d in $$(cd lua && find . -type d); do install -d -m 0755 $(DESTDIR)$(DATADIR)/$$d; done
	for f in $$(cd lua && find . -name '*.lua'); do install -m 0644 lua/$$f $(DESTDIR)$(DATADIR)/$$f; done
	install -m 0644 scripts/*.lua scripts/users.example $(DESTDIR)$(DATADIR)/scripts/
	@if [ -e $(DESTDIR)$(CONFDIR)/gateway.lua ]; then \
	  echo "install: keeping $(DESTDIR)$(CONFDIR)/gateway.lua"; \
	else \
	  echo "install -m 0644 gateway.lua.example $(DESTDIR)$(CONFDIR)/gateway.lua"; \
	  install -m 0644 gateway.lua.example $(DESTDIR)$(CONFDIR)/gateway.lua; \
	fi
	sed -e 's|@BINDIR@|$(BINDIR)|g' -e 's|@CONFDIR@|$(CONFDIR)|g' scripts/gateway.service \
	  >$(DESTDIR)$(UNITDIR)/gateway.service.tmp
	chmod 0644 $(DESTDIR)$(UNITDIR)/gateway.service.tmp
	mv -f $(DESTDIR)$(UNITDIR)/gateway.service.tmp $(DESTDIR)$(UNITDIR)/gateway.service

# Removes what install put there, file by file (DATADIR may be shared);
# the config stays: it is the administrator's.
uninstall:
	rm -f $(DESTDIR)$(BINDIR)/gateway $(DESTDIR)$(UNITDIR)/gateway.service
	for f in $$(cd lua && find . -name '*.lua'); do rm -f $(DESTDIR)$(DATADIR)/$$f; done
	for f in $$(cd scripts && echo *.lua) users.example; do rm -f $(DESTDIR)$(DATADIR)/scripts/$$f; done
	for d in $$(cd lua && find . -mindepth 1 -depth -type d) scripts; do \
	  rmdir $(DESTDIR)$(DATADIR)/$$d 2>/dev/null || true; done
	rmdir $(DESTDIR)$(DATADIR) 2>/dev/null || true

clean:
	rm -rf build gateway

-include $(CORE_OBJS:.o=.d) $(BUILD)/server/main.d $(UNIT_BINS:=.d) $(wildcard $(FUZZ_DIR)/*.d) \
         $(wildcard $(FUZZ_LOW_OBJS:.o=.d))
