# Relay: one static binary. `make` fetches and verifies the pinned BearSSL
# and jsmn (vendor/fetch.sh), builds BearSSL as its own archive with its own
# flags, and links ./relay statically against musl.
.POSIX:
.SUFFIXES:

CC       = musl-gcc
HOSTCC   = cc
BUILD    = build
VERSION  = 0.1.0
OPT      = -Os
# C needs no unwind tables: leaving them out saves ~30 KiB of .eh_frame.
NOUNWIND = -fno-asynchronous-unwind-tables -fno-unwind-tables
# The link is static and not position-independent (ELF type EXEC, loaded
# at a fixed address either way), so position-independent code buys
# nothing: without it pointer tables are plain read-only data instead of
# relocated .data.rel.ro, and the code is smaller (~2.3 KiB in all).
NOPIE    = -fno-pie
WARN     = -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
           -Wmissing-prototypes -Wpointer-arith -Wcast-qual -Wsign-compare
CFLAGS   = -std=c99 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE $(OPT) $(NOUNWIND) $(NOPIE) $(WARN) \
           -ffunction-sections -fdata-sections -DRELAY_VERSION='"$(VERSION)"' \
           -Ivendor/bearssl/inc -Isrc -I$(BUILD) $(LTO)
# jsmn is not part of ./relay: only the reference scanner the JSON tests
# compare against (tests/unit/json_ref.c, included by test_json and the
# json_diff fuzz target) is built with it.
JSMN_CFLAGS = -DJSMN_STRICT -DJSMN_PARENT_LINKS -Ivendor/jsmn
# Link-time optimisation of our objects and BearSSL's (not musl's): each
# function keeps its file's -Os or -O2, the link inlines and drops across
# files (ours: -4.0 KiB and -2.3% instructions per request; BearSSL's:
# -3.8 KiB). gcc's linker plugin makes every link of these objects an LTO
# link, but for the unit programs (-fno-lto: their plain code). The
# links repeat the warnings, -Werror included, since LTO finds new paths
# for -Wmaybe-uninitialized; that covers BearSSL's code too (clean with
# the pinned version and gcc 12). The objects are fat (bytecode and plain
# code) so that tools/sizes.sh can link the plain code with -fno-lto and
# count bytes per object. From a clean tree, LTO= LTO_LINK= builds
# without it.
LTO      = -flto=auto -ffat-lto-objects
LTO_LINK = $(LTO) $(OPT) $(WARN)
# noseparate-code: no page of padding between the headers, code and
# read-only data of a static binary (~4 KiB). norelro and a small
# common-page-size: no padding before the writable data either (0 to
# 4 KiB; with RELRO ld ends that part on a page boundary, without it ld
# still starts the data on a new page of the file when that saves a page
# of memory, so the file grew in 4 KiB steps). The data now starts in the
# file right after the read-only part (its first page is mapped twice).
# RELRO is applied by a dynamic loader: a static musl binary never makes
# those pages read-only (/proc/PID/maps shows them rw-p either way).
LDFLAGS  = $(LTO_LINK) -static -Wl,--gc-sections -Wl,-z,noseparate-code \
           -Wl,-z,norelro -Wl,-z,common-page-size=64 -s
BR_CFLAGS = -W -Wall $(OPT) $(LTO) $(NOUNWIND) $(NOPIE) -ffunction-sections -fdata-sections \
           -Ivendor/bearssl/inc -Ivendor/bearssl/src

MODULES  = util sha256 log clock buf conf conf_directives conf_providers conf_fleet http http_chunked \
           json net dns dns_parse tls tls_errors tls_certs route money \
           ledger api server upstream metrics ratelimit store store_rebuild fleet gen rewrite pool billing watch \
           usage sse path peers stream tasks upload exchange exchange_hold access local reject admit front loop cli
OBJS     = $(MODULES:%=$(BUILD)/%.o) $(BUILD)/default_conf.o $(BUILD)/roots.o \
           $(BUILD)/store_lua.o
UNITS    = util sha256 buf conf http json route money ledger dns tls usage sse path peers \
           rewrite server upstream stream gen billing tasks front exchange loop cli \
           ratelimit metrics access
VENDOR_OK = vendor/.fetched

# The ledger's parts besides ledger.c (src/ledger_*.c), each with its own
# unit test program but ledger_sync (test_ledger runs its helper). The
# tables are on the per-request charge path: -O2.
MODULES += ledger_rec ledger_table ledger_sync ledger_queue ledger_replay \
           ledger_report ledger_recent ledger_query
UNITS   += ledger_rec ledger_table ledger_queue ledger_replay ledger_report \
           ledger_recent
OPT_ledger_table = $(OPT_HOT)
LEDGER_OBJS = $(BUILD)/ledger.o $(BUILD)/ledger_rec.o $(BUILD)/ledger_table.o $(BUILD)/ledger_recent.o \
              $(BUILD)/ledger_sync.o $(BUILD)/ledger_queue.o \
              $(BUILD)/ledger_replay.o $(BUILD)/ledger_report.o $(BUILD)/ledger_query.o

# The store client (issue 18): the RESP2 codec and the store's Lua scripts
# (src/resp.c, src/store_scripts.c); their tests are test_resp and
# tests/store/ (make test-store).
MODULES += resp store_scripts
UNITS   += resp store_scripts

# multipart/form-data bodies (SPEC §9): the incremental reader uploads
# stream through (src/multipart.c), on the per-request path: -O2. Its
# unit test needs nothing else.
MODULES += multipart
UNITS   += multipart
#OPT_multipart = $(OPT_HOT)
$(BUILD)/test_multipart: tests/unit/test_multipart.c $(BUILD)/multipart.o

# Our printf family (src/fmt.c, fmt.h): snprintf, vsnprintf, printf,
# fprintf, vfprintf, dprintf without musl's floating-point formatting, so
# its vfprintf.o (~11 KB) is not linked. -Os: a response head's
# snprintf (5 conversions, 110 bytes) takes ~2,280 instructions against
# musl's ~3,660; -O2 would save 40 more for 1.5 KB. Every unit program
# links it too, so the tests run the relay's printf; test_fmt compares it
# with the host C library's on the same table (build/fmt_ref, HOSTCC).
MODULES += fmt
UNITS   += fmt
$(BUILD)/test_fmt: tests/unit/test_fmt.c tests/unit/fmt_cases.h tests/unit/fmt_esc.h $(BUILD)/fmt.o $(BUILD)/fmt_ref
# The cases use odd flag mixes (%-06d, %08.3d) on purpose; -fno-builtin:
# every call reaches fmt.c (the compiler would fold some, return values too).
UNIT_CFLAGS_test_fmt = -Wno-format -fno-builtin
$(BUILD)/fmt_ref: tests/unit/fmt_ref.c tests/unit/fmt_cases.h tests/unit/fmt_esc.h
	@mkdir -p $(BUILD)
	$(HOSTCC) -std=c99 -O1 -Wall -Wextra -Werror -Wno-format -fno-builtin -D_POSIX_C_SOURCE=200809L -Itests/unit -o $@ tests/unit/fmt_ref.c

all: relay

# One stamp for both, so a parallel make fetches once.
$(VENDOR_OK): vendor/VERSIONS vendor/fetch.sh
	sh vendor/fetch.sh
	touch $@

# The compiler and flags BearSSL was built with: when they change (LTO
# on or off, a cross compiler), its objects are built again.
BR_STAMP = $(BUILD)/bearssl.flags
$(BR_STAMP): FORCE
	@mkdir -p $(BUILD)
	@echo '$(CC) $(BR_CFLAGS)' | cmp -s - $@ || { \
	    rm -rf $(BUILD)/bearssl $(BUILD)/libbearssl.a; \
	    echo '$(CC) $(BR_CFLAGS)' > $@; }

# BearSSL sources are listed after fetching, so this rule recurses once.
$(BUILD)/libbearssl.a: $(VENDOR_OK) $(BR_STAMP)
	@mkdir -p $(BUILD)/bearssl
	$(MAKE) -s -f vendor/bearssl.mk CC="$(CC)" BR_CFLAGS="$(BR_CFLAGS)" \
	    OUT=$(BUILD)/bearssl LIB=$@

# The default config, LZ-packed (2.5 KiB -> 1 KiB; conf_default_text()
# unpacks it), by a tool built with the host's compiler.
$(BUILD)/lzpack: tools/lzpack.c tools/lz.h
	@mkdir -p $(BUILD)
	$(HOSTCC) -std=c99 -O2 -Wall -Wextra -Werror -o $@ tools/lzpack.c
$(BUILD)/default_conf.c: configs/relay.conf $(BUILD)/lzpack
	$(BUILD)/lzpack configs/relay.conf conf_default > $@.tmp && mv $@.tmp $@

# The developer console (GET /): src/console.html without its opening
# comment, leading blanks, empty lines and // comment lines, compressed
# with gzip -9n (no name, no time stamp: the same bytes on every build) and
# turned into C source that src/api.c includes (api_console_gz,
# api_console_gz_len). Compressed: 40% of its size (5.6 of 13.9 KB today).
$(BUILD)/console.html: src/console.html
	@mkdir -p $(BUILD)
	sed -e '/^<!--$$/,/^-->$$/d' -e 's/^[[:space:]]*//' -e '/^$$/d' -e '/^\/\//d' \
	    src/console.html > $@
$(BUILD)/console.html.gz: $(BUILD)/console.html
	gzip -9n -c $(BUILD)/console.html > $@.tmp && mv $@.tmp $@
$(BUILD)/console_html.inc: $(BUILD)/console.html.gz src/embed.sh
	sh src/embed.sh -b $(BUILD)/console.html.gz api_console_gz \
	    api_console_gz_len > $@
$(BUILD)/api.o: $(BUILD)/console_html.inc

# Trust anchors compiled in from the build machine's CA bundle, parsed by
# the same code that loads ca_file (tools/mkroots includes src/tls_certs.c).
CA_BUNDLE = /etc/ssl/certs/ca-certificates.crt
$(BUILD)/mkroots: tools/mkroots.c tools/lz.h src/tls_certs.c src/tls.h src/util.h $(BUILD)/util.o $(BUILD)/sha256.o $(BUILD)/log.o $(BUILD)/clock.o $(BUILD)/libbearssl.a
	$(CC) $(CFLAGS) -Wno-missing-prototypes -static -o $@ tools/mkroots.c $(BUILD)/util.o $(BUILD)/sha256.o $(BUILD)/log.o $(BUILD)/clock.o $(BUILD)/libbearssl.a

# A cross build passes the host's tool (MKROOTS=build/mkroots): the output
# is the same on every architecture.
MKROOTS  = $(BUILD)/mkroots
$(BUILD)/roots.c: $(MKROOTS)
	$(MKROOTS) $(CA_BUNDLE) > $@.tmp && mv $@.tmp $@

$(BUILD)/roots.o: $(BUILD)/roots.c
	$(CC) $(CFLAGS) -Wno-missing-prototypes -c -o $@ $(BUILD)/roots.c

# The store's Lua scripts, packed (tools/mklua.c reads src/store_scripts.c).
$(BUILD)/mklua: tools/mklua.c tools/lz.h src/store_scripts.c src/store_scripts.h src/util.h
	@mkdir -p $(BUILD)
	$(HOSTCC) -std=c99 -O2 -Wall -Wextra -Werror -Isrc -o $@ tools/mklua.c
$(BUILD)/store_lua.c: $(BUILD)/mklua
	$(BUILD)/mklua > $@.tmp && mv $@.tmp $@
$(BUILD)/store_lua.o: $(BUILD)/store_lua.c
	$(CC) $(CFLAGS) -Wno-missing-prototypes -c -o $@ $(BUILD)/store_lua.c

$(BUILD)/default_conf.o: $(BUILD)/default_conf.c
	$(CC) $(CFLAGS) -c -o $@ $(BUILD)/default_conf.c

# The per-request path is built for speed, the rest for size: -O2 on
# these (seven before http_chunked.c left http.c) costs ~8 KiB and saves
# ~2,600 instructions per request.
OPT_HOT  = -O2
OPT_http = $(OPT_HOT)
# http_chunked: -Os since the growable connection buffers (+1.2 KB of
# code) took the binary past 400 KiB: 432 bytes smaller, off the
# request/response path (one short step per streamed chunk).
OPT_json = $(OPT_HOT)
OPT_server = $(OPT_HOT)
OPT_upstream = $(OPT_HOT)
# buf: -Os (its growth and give-back are not per byte; -O2 cost 512 bytes)
OPT_util = $(OPT_HOT)
# ledger.c went back to -Os when the binary passed 400 KiB with this
# round's features: 8.2 KB smaller, +534 instructions per request
# (bench/profile.sh 3: 69,680 -> 70,214, 2026-12-05).
OPT_usage = $(OPT_HOT)
OPT_sse  = $(OPT_HOT)

$(BUILD)/%.o: src/%.c src/*.h $(VENDOR_OK)
	@mkdir -p $(BUILD)
	$(CC) $(CFLAGS) $(OPT_$*) -c -o $@ $<

$(BUILD)/relay.o: relay.c src/*.h $(VENDOR_OK)
	@mkdir -p $(BUILD)
	$(CC) $(CFLAGS) -c -o $@ relay.c

relay: $(BUILD)/relay.o $(OBJS) $(BUILD)/libbearssl.a
	$(CC) $(LDFLAGS) -o $@ $(BUILD)/relay.o $(OBJS) $(BUILD)/libbearssl.a

run: relay
	./relay

# Unit tests: one program per module, linked with that module and the
# layers below it only.
UNIT_BINS = $(UNITS:%=$(BUILD)/test_%)
$(BUILD)/test_util: tests/unit/test_util.c tools/lz.h $(BUILD)/util.o $(BUILD)/sha256.o $(BUILD)/libbearssl.a
$(BUILD)/test_sha256: tests/unit/test_sha256.c $(BUILD)/sha256.o $(BUILD)/libbearssl.a
$(BUILD)/test_buf: tests/unit/test_buf.c $(BUILD)/buf.o $(BUILD)/util.o $(BUILD)/sha256.o $(BUILD)/libbearssl.a
$(BUILD)/test_http: tests/unit/test_http.c tests/unit/guard_t.h $(BUILD)/http.o $(BUILD)/http_chunked.o $(BUILD)/util.o $(BUILD)/sha256.o $(BUILD)/libbearssl.a
$(BUILD)/test_json: tests/unit/test_json.c tests/unit/json_ref.c $(BUILD)/json.o $(BUILD)/util.o $(BUILD)/sha256.o $(BUILD)/libbearssl.a
$(BUILD)/test_conf: tests/unit/test_conf.c $(BUILD)/conf.o $(BUILD)/conf_directives.o $(BUILD)/conf_providers.o $(BUILD)/conf_fleet.o $(BUILD)/log.o $(BUILD)/clock.o $(BUILD)/util.o $(BUILD)/sha256.o $(BUILD)/default_conf.o $(BUILD)/libbearssl.a
$(BUILD)/test_route: tests/unit/test_route.c $(BUILD)/route.o $(BUILD)/conf.o $(BUILD)/conf_directives.o $(BUILD)/conf_providers.o $(BUILD)/conf_fleet.o $(BUILD)/log.o $(BUILD)/clock.o $(BUILD)/util.o $(BUILD)/sha256.o $(BUILD)/default_conf.o $(BUILD)/libbearssl.a
$(BUILD)/test_access: tests/unit/test_access.c $(BUILD)/access.o $(BUILD)/metrics.o $(BUILD)/ratelimit.o $(BUILD)/money.o $(BUILD)/json.o $(BUILD)/conf.o $(BUILD)/conf_directives.o $(BUILD)/conf_providers.o $(BUILD)/conf_fleet.o $(BUILD)/default_conf.o $(BUILD)/log.o $(BUILD)/clock.o $(BUILD)/util.o $(BUILD)/sha256.o $(BUILD)/libbearssl.a
$(BUILD)/test_metrics: tests/unit/test_metrics.c $(BUILD)/metrics.o $(BUILD)/ratelimit.o $(BUILD)/route.o $(BUILD)/conf.o $(BUILD)/conf_directives.o $(BUILD)/conf_providers.o $(BUILD)/conf_fleet.o $(BUILD)/log.o $(BUILD)/clock.o $(BUILD)/util.o $(BUILD)/sha256.o $(BUILD)/default_conf.o $(BUILD)/libbearssl.a
$(BUILD)/test_money: tests/unit/test_money.c $(BUILD)/money.o $(BUILD)/util.o $(BUILD)/sha256.o $(BUILD)/libbearssl.a
$(BUILD)/test_ledger_rec: tests/unit/test_ledger_rec.c $(BUILD)/ledger_rec.o $(BUILD)/json.o $(BUILD)/util.o $(BUILD)/sha256.o $(BUILD)/libbearssl.a
$(BUILD)/test_ledger_recent: tests/unit/test_ledger_recent.c $(BUILD)/ledger_recent.o
$(BUILD)/test_ratelimit: tests/unit/test_ratelimit.c $(BUILD)/ratelimit.o
$(BUILD)/test_ledger_table: tests/unit/test_ledger_table.c $(BUILD)/ledger_table.o $(BUILD)/ledger_recent.o $(BUILD)/util.o $(BUILD)/sha256.o $(BUILD)/libbearssl.a
$(BUILD)/test_ledger_queue: tests/unit/test_ledger_queue.c tests/unit/ledger_t.h $(BUILD)/ledger_queue.o $(BUILD)/ledger_rec.o $(BUILD)/json.o $(BUILD)/util.o $(BUILD)/sha256.o $(BUILD)/log.o $(BUILD)/clock.o $(BUILD)/libbearssl.a
$(BUILD)/test_ledger_replay: tests/unit/test_ledger_replay.c tests/unit/ledger_t.h $(BUILD)/ledger_replay.o $(BUILD)/ledger_table.o $(BUILD)/ledger_recent.o $(BUILD)/ledger_rec.o $(BUILD)/json.o $(BUILD)/util.o $(BUILD)/sha256.o $(BUILD)/log.o $(BUILD)/clock.o $(BUILD)/libbearssl.a
$(BUILD)/test_ledger_report: tests/unit/test_ledger_report.c tests/unit/ledger_t.h $(BUILD)/ledger_report.o $(BUILD)/ledger_replay.o $(BUILD)/ledger_queue.o $(BUILD)/ledger_table.o $(BUILD)/ledger_recent.o $(BUILD)/ledger_rec.o $(BUILD)/money.o $(BUILD)/json.o $(BUILD)/util.o $(BUILD)/sha256.o $(BUILD)/log.o $(BUILD)/clock.o $(BUILD)/libbearssl.a
$(BUILD)/test_ledger: tests/unit/test_ledger.c tests/unit/ledger_t.h $(BUILD)/ledger.o $(BUILD)/ledger_report.o $(BUILD)/ledger_query.o $(BUILD)/ledger_rec.o $(BUILD)/ledger_table.o $(BUILD)/ledger_recent.o $(BUILD)/ledger_sync.o $(BUILD)/ledger_queue.o $(BUILD)/ledger_replay.o $(BUILD)/money.o $(BUILD)/json.o $(BUILD)/util.o $(BUILD)/sha256.o $(BUILD)/log.o $(BUILD)/clock.o $(BUILD)/libbearssl.a
$(BUILD)/money_cases: tests/unit/money_cases.c $(BUILD)/money.o $(BUILD)/util.o $(BUILD)/sha256.o $(BUILD)/libbearssl.a
$(BUILD)/test_dns: tests/unit/test_dns.c $(BUILD)/dns.o $(BUILD)/dns_parse.o $(BUILD)/util.o $(BUILD)/sha256.o $(BUILD)/log.o $(BUILD)/clock.o $(BUILD)/libbearssl.a
$(BUILD)/dnsprobe: tests/e2e/dnsprobe.c $(BUILD)/dns.o $(BUILD)/dns_parse.o $(BUILD)/util.o $(BUILD)/sha256.o $(BUILD)/log.o $(BUILD)/clock.o $(BUILD)/libbearssl.a
	$(CC) $(CFLAGS) -static -o $@ tests/e2e/dnsprobe.c $(filter %.o %.a,$^)
$(BUILD)/test_usage: tests/unit/test_usage.c $(BUILD)/usage.o $(BUILD)/json.o $(BUILD)/util.o $(BUILD)/sha256.o $(BUILD)/libbearssl.a
$(BUILD)/test_peers: tests/unit/test_peers.c $(BUILD)/peers.o
$(BUILD)/test_path: tests/unit/test_path.c $(BUILD)/path.o $(BUILD)/util.o $(BUILD)/sha256.o $(BUILD)/libbearssl.a
$(BUILD)/test_sse: tests/unit/test_sse.c $(BUILD)/sse.o $(BUILD)/usage.o $(BUILD)/json.o $(BUILD)/util.o $(BUILD)/sha256.o $(BUILD)/libbearssl.a
$(BUILD)/test_tls: tests/unit/test_tls.c $(BUILD)/tls.o $(BUILD)/tls_errors.o $(BUILD)/tls_certs.o $(BUILD)/roots.o $(BUILD)/util.o $(BUILD)/sha256.o $(BUILD)/log.o $(BUILD)/clock.o $(BUILD)/libbearssl.a
$(BUILD)/test_rewrite: tests/unit/test_rewrite.c $(BUILD)/rewrite.o $(BUILD)/json.o $(BUILD)/http.o $(BUILD)/http_chunked.o $(BUILD)/buf.o $(BUILD)/util.o $(BUILD)/sha256.o $(BUILD)/libbearssl.a
$(BUILD)/test_server: tests/unit/test_server.c tests/unit/loopback.h $(BUILD)/server.o $(BUILD)/watch.o $(BUILD)/http.o $(BUILD)/http_chunked.o $(BUILD)/json.o $(BUILD)/buf.o $(BUILD)/net.o $(BUILD)/tls.o $(BUILD)/tls_errors.o $(BUILD)/tls_certs.o $(BUILD)/roots.o $(BUILD)/conf.o $(BUILD)/conf_directives.o $(BUILD)/conf_providers.o $(BUILD)/conf_fleet.o $(BUILD)/default_conf.o $(BUILD)/log.o $(BUILD)/clock.o $(BUILD)/util.o $(BUILD)/sha256.o $(BUILD)/libbearssl.a
$(BUILD)/test_upstream: tests/unit/test_upstream.c tests/unit/loopback.h $(BUILD)/upstream.o $(BUILD)/watch.o $(BUILD)/http.o $(BUILD)/http_chunked.o $(BUILD)/buf.o $(BUILD)/net.o $(BUILD)/tls.o $(BUILD)/tls_errors.o $(BUILD)/tls_certs.o $(BUILD)/roots.o $(BUILD)/conf.o $(BUILD)/conf_directives.o $(BUILD)/conf_providers.o $(BUILD)/conf_fleet.o $(BUILD)/default_conf.o $(BUILD)/log.o $(BUILD)/clock.o $(BUILD)/util.o $(BUILD)/sha256.o $(BUILD)/libbearssl.a
$(BUILD)/test_stream: tests/unit/test_stream.c tests/unit/loopback.h $(BUILD)/stream.o $(BUILD)/sse.o $(BUILD)/usage.o $(BUILD)/server.o $(BUILD)/upstream.o $(BUILD)/watch.o $(BUILD)/http.o $(BUILD)/http_chunked.o $(BUILD)/json.o $(BUILD)/buf.o $(BUILD)/net.o $(BUILD)/tls.o $(BUILD)/tls_errors.o $(BUILD)/tls_certs.o $(BUILD)/roots.o $(BUILD)/conf.o $(BUILD)/conf_directives.o $(BUILD)/conf_providers.o $(BUILD)/conf_fleet.o $(BUILD)/default_conf.o $(BUILD)/log.o $(BUILD)/clock.o $(BUILD)/util.o $(BUILD)/sha256.o $(BUILD)/libbearssl.a
# The runtime: gen, billing, tasks (with pool), exchange (with stream and
# server), front (with local), loop, each with the layers below it.
RT_BASE = $(BUILD)/conf.o $(BUILD)/conf_directives.o $(BUILD)/conf_providers.o $(BUILD)/conf_fleet.o $(BUILD)/json.o $(BUILD)/log.o $(BUILD)/clock.o $(BUILD)/util.o $(BUILD)/sha256.o $(BUILD)/default_conf.o $(BUILD)/libbearssl.a
RT_GEN = $(BUILD)/gen.o $(BUILD)/api.o $(BUILD)/rewrite.o $(BUILD)/http.o $(BUILD)/http_chunked.o $(BUILD)/buf.o $(BUILD)/route.o $(BUILD)/tls.o $(BUILD)/tls_errors.o $(BUILD)/tls_certs.o $(BUILD)/roots.o
RT_BILLING = $(BUILD)/billing.o $(LEDGER_OBJS) $(BUILD)/money.o $(BUILD)/metrics.o $(BUILD)/ratelimit.o
RT_POOL = $(BUILD)/pool.o $(BUILD)/upstream.o $(BUILD)/watch.o $(BUILD)/dns.o $(BUILD)/dns_parse.o $(BUILD)/net.o \
          $(BUILD)/fleet.o $(BUILD)/store.o $(BUILD)/store_scripts.o $(BUILD)/store_lua.o $(BUILD)/resp.o
RT_EXCHANGE = $(BUILD)/exchange.o $(BUILD)/exchange_hold.o $(BUILD)/upload.o $(BUILD)/multipart.o $(BUILD)/stream.o $(BUILD)/sse.o $(BUILD)/usage.o $(BUILD)/server.o $(BUILD)/tasks.o
$(BUILD)/test_gen: tests/unit/test_gen.c tests/unit/t_rt.h $(RT_GEN) $(RT_BASE)
$(BUILD)/test_billing: tests/unit/test_billing.c tests/unit/t_rt.h $(RT_BILLING) $(RT_BASE)
$(BUILD)/test_tasks: tests/unit/test_tasks.c tests/unit/t_rt.h $(BUILD)/tasks.o $(BUILD)/usage.o $(RT_POOL) $(RT_GEN) $(RT_BILLING) $(RT_BASE)
$(BUILD)/test_exchange: tests/unit/test_exchange.c tests/unit/t_rt.h $(RT_EXCHANGE) $(RT_POOL) $(RT_GEN) $(RT_BILLING) $(RT_BASE)
$(BUILD)/test_front: tests/unit/test_front.c tests/unit/t_rt.h $(BUILD)/front.o $(BUILD)/admit.o $(BUILD)/access.o $(BUILD)/path.o $(BUILD)/local.o $(RT_EXCHANGE) $(RT_POOL) $(RT_GEN) $(RT_BILLING) $(RT_BASE)
$(BUILD)/test_loop: tests/unit/test_loop.c tests/unit/t_rt.h $(BUILD)/loop.o $(BUILD)/reject.o $(BUILD)/peers.o $(BUILD)/front.o $(BUILD)/admit.o $(BUILD)/access.o $(BUILD)/path.o $(BUILD)/local.o $(RT_EXCHANGE) $(RT_POOL) $(RT_GEN) $(RT_BILLING) $(RT_BASE)
$(BUILD)/test_resp: tests/unit/test_resp.c tests/unit/guard_t.h tests/unit/resp_t.h $(BUILD)/resp.o $(BUILD)/util.o $(BUILD)/sha256.o $(BUILD)/libbearssl.a
$(BUILD)/test_store_scripts: tests/unit/test_store_scripts.c $(BUILD)/store_scripts.o $(BUILD)/store_lua.o $(BUILD)/util.o $(BUILD)/sha256.o $(BUILD)/libbearssl.a
# The store's tools (tests/store/): the scripts' texts and keys as the
# relay has them, and the codec against a live server.
STORE_TOOLS = $(BUILD)/store_dump $(BUILD)/resp_live
$(BUILD)/store_dump: tests/store/store_dump.c $(BUILD)/store_scripts.o $(BUILD)/store_lua.o $(BUILD)/util.o $(BUILD)/sha256.o $(BUILD)/libbearssl.a
$(BUILD)/resp_live: tests/store/resp_live.c tests/unit/resp_t.h $(BUILD)/resp.o $(BUILD)/store_scripts.o $(BUILD)/store_lua.o $(BUILD)/util.o $(BUILD)/sha256.o $(BUILD)/libbearssl.a
$(STORE_TOOLS):
	$(CC) $(CFLAGS) -Wno-missing-prototypes -Itests/unit -static -o $@ tests/store/$(@F).c $(filter %.o %.a,$^)
# Extra flags of one unit program: UNIT_CFLAGS_<program>.
UNIT_CFLAGS_test_json = $(JSMN_CFLAGS)
# cli is the top: loop_run and the ledger commands are stubs in the test.
$(BUILD)/test_cli: tests/unit/test_cli.c $(BUILD)/cli.o $(BUILD)/conf.o $(BUILD)/conf_directives.o $(BUILD)/conf_providers.o $(BUILD)/conf_fleet.o $(BUILD)/tls.o $(BUILD)/tls_errors.o $(BUILD)/tls_certs.o $(BUILD)/roots.o $(BUILD)/log.o $(BUILD)/clock.o $(BUILD)/util.o $(BUILD)/sha256.o $(BUILD)/default_conf.o $(BUILD)/libbearssl.a
$(UNIT_BINS) $(BUILD)/money_cases: $(BUILD)/fmt.o
# Linked from the objects' plain code (-fno-lto): an LTO link per unit
# program took 10-30 s each, minutes of make test; the release binary
# the e2e tests run is the LTO one.
$(UNIT_BINS) $(BUILD)/money_cases:
	$(CC) $(CFLAGS) $(UNIT_CFLAGS_$(@F)) -fno-lto -Wno-missing-prototypes -Itests/unit -static -o $@ tests/unit/$(@F).c $(filter %.o %.a,$^)

MOCK = $(BUILD)/mockup
$(MOCK): tests/e2e/mockup.c
	@mkdir -p $(BUILD)
	$(HOSTCC) -std=gnu99 -O2 -Wall -Wextra -Werror -o $@ tests/e2e/mockup.c -lpthread -lssl -lcrypto

test: relay $(UNIT_BINS) $(BUILD)/money_cases $(BUILD)/dnsprobe $(MOCK)
	sh tests/run.sh

# The store's scripts against a real redis-server on loopback (a
# temporary one on a free port; a failure when redis-server is not
# installed: tools/setup.sh test installs it). Part of make test.
test: $(STORE_TOOLS)
test-store: $(STORE_TOOLS)
	python3 tests/store/test_scripts.py

# ASan+UBSan unit tests and relay (e2e subset), then each libFuzzer target
# for a short budget (tests/sanitize.sh; part of make test).
asan fuzz: relay $(UNIT_BINS) $(MOCK)
	sh tests/sanitize.sh

# Warnings (the build's flags and a few more), file and function sizes,
# exported functions nothing uses: tools/lint.sh says what each check is.
# Not part of `make test` yet.
lint: $(VENDOR_OK) $(BUILD)/console_html.inc
	@CC="$(CC)" \
	    LINT_CFLAGS="$(filter-out -Ivendor/bearssl/inc -DRELAY_VERSION=%,$(CFLAGS)) -isystem vendor/bearssl/inc" \
	    sh tools/lint.sh

bench: relay $(MOCK)
	sh bench/run.sh

# A bounded mixed load with reloads for SOAK_SECONDS (600): RSS and open
# descriptors flat, every 2xx charged once, the ledger verifies
# (tests/soak/soak.py). Not part of make test.
soak: relay $(MOCK)
	python3 tests/soak/soak.py

clean:
	rm -rf $(BUILD) relay

distclean: clean
	rm -rf vendor/bearssl vendor/jsmn vendor/cache

.PHONY: all run test bench soak clean distclean asan fuzz lint
.PHONY: test-store

# ---- Edge: set-up, cross builds, container image, service files ----------
# tools/setup.sh installs what the goals need (apt-get, idempotent, silent
# when nothing is missing). Every build reaches it through the vendor stamp
# (order-only: it never makes anything out of date).
SETUP_JOBS = build \
    $(if $(filter test asan fuzz test-cross test-image check-service,$(MAKECMDGOALS)),test) \
    $(if $(filter cross test-cross image test-image check-service,$(MAKECMDGOALS)),cross) \
    $(if $(filter image test-image,$(MAKECMDGOALS)),image) \
    $(if $(filter check-service,$(MAKECMDGOALS)),service)
setup:
	@[ -n "$(SETUP_DONE)" ] || sh tools/setup.sh $(SETUP_JOBS)
$(VENDOR_OK) $(MOCK) vendor/softfloat/mipsel/.verified: | setup

# A relay linked inside its build directory (make cross, one per target).
$(BUILD)/relay: $(BUILD)/relay.o $(OBJS) $(BUILD)/libbearssl.a
	$(CC) $(LDFLAGS) -o $@ $(BUILD)/relay.o $(OBJS) $(BUILD)/libbearssl.a

# The same objects with a wall clock a test can set (tests/e2e/faketime.c;
# e2e test_clock).
test: $(BUILD)/relay-faketime
# 32-bit musl calls the 64-bit-time names.
FAKETIME_SYMS = clock_gettime,time
# The wrappers are plain code (-fno-lto): as LTO bytecode their __wrap_
# definitions are not there yet when the linker resolves --wrap for
# references inside LTO code, BearSSL's time() (gcc 12, binutils 2.40).
$(BUILD)/relay-faketime: $(BUILD)/relay.o $(OBJS) $(BUILD)/libbearssl.a $(BUILD)/faketime.o
	$(CC) $(CFLAGS) $(LDFLAGS) -Wl,--wrap=$(subst $(comma),$(comma)--wrap=,$(FAKETIME_SYMS)) \
	    -o $@ $(BUILD)/faketime.o $(BUILD)/relay.o $(OBJS) $(BUILD)/libbearssl.a
$(BUILD)/faketime.o: tests/e2e/faketime.c
	$(CC) $(CFLAGS) -fno-lto -c -o $@ tests/e2e/faketime.c
comma := ,

# Static musl binaries per target, each from its own build directory
# (x86_64: the native build/, the others build/cross/<arch>/), with the
# host's mkroots (build/mkroots). mipsel is soft-float (FPU-less MIPS32r2
# routers): musl and gcc's soft-fp built by vendor/softfloat.sh.
CROSS_ARCHES = x86_64 aarch64 armv7 mipsel
SOFTFLOAT = vendor/softfloat/mipsel
CROSS_BUILD_aarch64 = build/cross/aarch64
CROSS_BUILD_armv7   = build/cross/armv7
CROSS_BUILD_mipsel  = build/cross/mipsel
CROSS_CC_aarch64 = aarch64-linux-gnu-gcc -specs /usr/lib/aarch64-linux-musl/musl-gcc.specs
CROSS_CC_armv7   = arm-linux-gnueabihf-gcc -specs /usr/lib/arm-linux-musleabihf/musl-gcc.specs
CROSS_CC_mipsel  = mipsel-linux-gnu-gcc -msoft-float -Wl,--no-warn-mismatch -specs $(CURDIR)/$(SOFTFLOAT)/lib/musl-gcc.specs
CROSS_TIME_aarch64 = clock_gettime,time
CROSS_TIME_armv7   = __clock_gettime64,__time64
CROSS_TIME_mipsel  = __clock_gettime64,__time64
CROSS_MAKE = $(MAKE) --no-print-directory SETUP_DONE=1 BUILD=$(CROSS_BUILD_$*) CC="$(CROSS_CC_$*)" \
    MKROOTS=$(BUILD)/mkroots FAKETIME_SYMS=$(CROSS_TIME_$*)

$(SOFTFLOAT)/.verified: vendor/softfloat.sh vendor/VERSIONS
	sh vendor/softfloat.sh

dist/relay-mipsel cross-units-mipsel: $(SOFTFLOAT)/.verified
# x86_64 is the native build: made by this make, not a second one in the
# same directory (make -j2 relay cross would build its objects twice).
dist/relay-x86_64: $(BUILD)/relay
	@mkdir -p dist
	@cmp -s $(BUILD)/relay $@ || cp $(BUILD)/relay $@
dist/relay-%: $(BUILD)/mkroots FORCE
	+@$(CROSS_MAKE) $(CROSS_BUILD_$*)/relay
	@mkdir -p dist
	@cmp -s $(CROSS_BUILD_$*)/relay $@ || cp $(CROSS_BUILD_$*)/relay $@

cross: $(CROSS_ARCHES:%=dist/relay-%)
	@cd dist && sha256sum $(CROSS_ARCHES:%=relay-%) > SHA256SUMS
	@printf '%-8s %9s %8s  %s\n' target bytes KiB sha256
	@for a in $(CROSS_ARCHES); do \
	    s=$$(wc -c < dist/relay-$$a); \
	    h=$$(grep " relay-$$a\$$" dist/SHA256SUMS | cut -c1-16); \
	    printf '%-8s %9d %8s  %s...\n' $$a $$s $$(awk "BEGIN{printf \"%.1f\", $$s/1024}") $$h; \
	done

# The unit tests, money cases and the fake-clock relay for one target.
cross-units cross-units-x86_64: $(UNIT_BINS) $(BUILD)/money_cases $(BUILD)/relay-faketime
cross-units-%: $(BUILD)/mkroots FORCE
	+@$(CROSS_MAKE) cross-units

# Every foreign binary under qemu-user (tests/cross.sh): unit tests, the
# money cross-check, an e2e suite, and no FPU instruction in mipsel.
# TEST_CROSS_ARCHES narrows the targets tested (CI: x86_64 mipsel).
TEST_CROSS_ARCHES = $(CROSS_ARCHES)
test-cross: cross relay $(TEST_CROSS_ARCHES:%=cross-units-%) $(MOCK) $(BUILD)/relay-faketime
	sh tests/cross.sh $(TEST_CROSS_ARCHES)

# The FROM scratch image per target, with podman or docker: relay:latest,
# relay:<arch>, and dist/relay-oci.tar (multi-arch); tools/image.sh.
image: cross
	sh tools/image.sh

# Build, inspect and run the images (tests/image.py).
test-image: image $(MOCK)
	python3 tests/image.py

# dist/relay.service (systemd-analyze verify and security, its syscall
# filter against a traced relay) and dist/openwrt/ (shellcheck, a procd
# dry run, the package Makefile against stub OpenWrt includes).
check-service: cross relay $(MOCK)
	python3 tests/service.py

clean: clean-edge
clean-edge:
	rm -rf dist/relay-* dist/SHA256SUMS
distclean: distclean-edge
distclean-edge:
	rm -rf vendor/softfloat

FORCE:
.PHONY: setup cross cross-units cross-units-x86_64 test-cross image test-image check-service clean-edge distclean-edge FORCE
