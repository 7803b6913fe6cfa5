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
WARN     = -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
           -Wmissing-prototypes -Wpointer-arith -Wcast-qual -Wsign-compare
CFLAGS   = -std=c99 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE $(OPT) $(NOUNWIND) $(WARN) \
           -ffunction-sections -fdata-sections -DRELAY_VERSION='"$(VERSION)"' \
           -DJSMN_STRICT -DJSMN_PARENT_LINKS \
           -Ivendor/bearssl/inc -Ivendor/jsmn -Isrc -I$(BUILD)
# noseparate-code: no page of padding between the headers, code and
# read-only data of a static binary (~4 KiB).
LDFLAGS  = -static -Wl,--gc-sections -Wl,-z,noseparate-code -s
BR_CFLAGS = -W -Wall $(OPT) $(NOUNWIND) -ffunction-sections -fdata-sections \
           -Ivendor/bearssl/inc -Ivendor/bearssl/src

MODULES  = util sha256 log clock buf conf http json net dns tls route money \
           ledger api server upstream proxy cli
OBJS     = $(MODULES:%=$(BUILD)/%.o) $(BUILD)/default_conf.o $(BUILD)/roots.o
UNITS    = util sha256 conf http json route money ledger dns tls
VENDOR_OK = vendor/.fetched

all: relay

# One stamp for both, so a parallel make fetches once.
$(VENDOR_OK): vendor/VERSIONS vendor/fetch.sh
	sh vendor/fetch.sh
	touch $@

# BearSSL sources are listed after fetching, so this rule recurses once.
$(BUILD)/libbearssl.a: $(VENDOR_OK)
	@mkdir -p $(BUILD)/bearssl
	$(MAKE) -s -f vendor/bearssl.mk CC="$(CC)" BR_CFLAGS="$(BR_CFLAGS)" \
	    OUT=$(BUILD)/bearssl LIB=$@

$(BUILD)/default_conf.c: configs/relay.conf src/embed.sh
	@mkdir -p $(BUILD)
	sh src/embed.sh configs/relay.conf > $@

# Trust anchors compiled in from the build machine's CA bundle, parsed by
# the same code that loads ca_file (tools/mkroots includes src/tls.c).
CA_BUNDLE = /etc/ssl/certs/ca-certificates.crt
$(BUILD)/mkroots: tools/mkroots.c src/tls.c src/tls.h $(BUILD)/util.o $(BUILD)/sha256.o $(BUILD)/log.o $(BUILD)/clock.o $(BUILD)/libbearssl.a
	$(CC) $(CFLAGS) -Wno-missing-prototypes -static -o $@ tools/mkroots.c $(BUILD)/util.o $(BUILD)/sha256.o $(BUILD)/log.o $(BUILD)/clock.o $(BUILD)/libbearssl.a

# A cross build passes the host's tool (MKROOTS=build/mkroots): the output
# is the same on every architecture.
MKROOTS  = $(BUILD)/mkroots
$(BUILD)/roots.c: $(MKROOTS)
	$(MKROOTS) $(CA_BUNDLE) > $@.tmp && mv $@.tmp $@

$(BUILD)/roots.o: $(BUILD)/roots.c
	$(CC) $(CFLAGS) -Wno-missing-prototypes -c -o $@ $(BUILD)/roots.c

$(BUILD)/default_conf.o: $(BUILD)/default_conf.c
	$(CC) $(CFLAGS) -c -o $@ $(BUILD)/default_conf.c

# The per-request path is built for speed, the rest for size: -O2 on
# these seven costs ~8 KiB and saves ~2,600 instructions per request.
OPT_HOT  = -O2
OPT_http = $(OPT_HOT)
OPT_json = $(OPT_HOT)
OPT_server = $(OPT_HOT)
OPT_upstream = $(OPT_HOT)
OPT_buf  = $(OPT_HOT)
OPT_util = $(OPT_HOT)
OPT_ledger = $(OPT_HOT)

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
$(BUILD)/test_util: tests/unit/test_util.c $(BUILD)/util.o $(BUILD)/sha256.o $(BUILD)/libbearssl.a
$(BUILD)/test_sha256: tests/unit/test_sha256.c $(BUILD)/sha256.o $(BUILD)/libbearssl.a
$(BUILD)/test_http: tests/unit/test_http.c $(BUILD)/http.o $(BUILD)/util.o $(BUILD)/sha256.o $(BUILD)/libbearssl.a
$(BUILD)/test_json: tests/unit/test_json.c tests/unit/json_ref.c $(BUILD)/json.o $(BUILD)/util.o $(BUILD)/sha256.o $(BUILD)/libbearssl.a
$(BUILD)/test_conf: tests/unit/test_conf.c $(BUILD)/conf.o $(BUILD)/log.o $(BUILD)/clock.o $(BUILD)/util.o $(BUILD)/sha256.o $(BUILD)/default_conf.o $(BUILD)/libbearssl.a
$(BUILD)/test_route: tests/unit/test_route.c $(BUILD)/route.o $(BUILD)/conf.o $(BUILD)/log.o $(BUILD)/clock.o $(BUILD)/util.o $(BUILD)/sha256.o $(BUILD)/default_conf.o $(BUILD)/libbearssl.a
$(BUILD)/test_money: tests/unit/test_money.c $(BUILD)/money.o $(BUILD)/util.o $(BUILD)/sha256.o $(BUILD)/libbearssl.a
$(BUILD)/test_ledger: tests/unit/test_ledger.c $(BUILD)/ledger.o $(BUILD)/money.o $(BUILD)/json.o $(BUILD)/util.o $(BUILD)/sha256.o $(BUILD)/log.o $(BUILD)/clock.o $(BUILD)/libbearssl.a
$(BUILD)/money_cases: tests/unit/money_cases.c $(BUILD)/money.o $(BUILD)/util.o $(BUILD)/sha256.o $(BUILD)/libbearssl.a
$(BUILD)/test_dns: tests/unit/test_dns.c $(BUILD)/dns.o $(BUILD)/util.o $(BUILD)/sha256.o $(BUILD)/log.o $(BUILD)/clock.o $(BUILD)/libbearssl.a
$(BUILD)/dnsprobe: tests/e2e/dnsprobe.c $(BUILD)/dns.o $(BUILD)/util.o $(BUILD)/sha256.o $(BUILD)/log.o $(BUILD)/clock.o $(BUILD)/libbearssl.a
	$(CC) $(CFLAGS) -static -o $@ tests/e2e/dnsprobe.c $(filter %.o %.a,$^)
$(BUILD)/test_tls: tests/unit/test_tls.c $(BUILD)/tls.o $(BUILD)/roots.o $(BUILD)/util.o $(BUILD)/sha256.o $(BUILD)/log.o $(BUILD)/clock.o $(BUILD)/libbearssl.a
$(UNIT_BINS) $(BUILD)/money_cases:
	$(CC) $(CFLAGS) -Wno-missing-prototypes -Itests/unit -static -o $@ tests/unit/$(@F).c $(filter %.o %.a,$^)

MOCK = $(BUILD)/mockup
$(MOCK): tests/e2e/mockup.c
	@mkdir -p $(BUILD)
	$(HOSTCC) -std=gnu99 -O2 -Wall -Wextra -Werror -o $@ tests/e2e/mockup.c -lpthread -lssl -lcrypto

test: relay $(UNIT_BINS) $(BUILD)/money_cases $(BUILD)/dnsprobe $(MOCK)
	sh tests/run.sh

# ASan+UBSan unit tests and relay (e2e subset), then each libFuzzer target
# for a short budget (tests/sanitize.sh; part of make test).
asan fuzz: relay $(UNIT_BINS) $(MOCK)
	sh tests/sanitize.sh

bench: relay $(MOCK)
	sh bench/run.sh

clean:
	rm -rf $(BUILD) relay

distclean: clean
	rm -rf vendor/bearssl vendor/jsmn vendor/cache

.PHONY: all run test bench clean distclean asan fuzz

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
$(BUILD)/relay-faketime: $(BUILD)/relay.o $(OBJS) $(BUILD)/libbearssl.a tests/e2e/faketime.c
	$(CC) $(CFLAGS) $(LDFLAGS) -Wl,--wrap=$(subst $(comma),$(comma)--wrap=,$(FAKETIME_SYMS)) \
	    -o $@ tests/e2e/faketime.c $(BUILD)/relay.o $(OBJS) $(BUILD)/libbearssl.a
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
test-cross: cross relay $(CROSS_ARCHES:%=cross-units-%) $(MOCK) $(BUILD)/relay-faketime
	sh tests/cross.sh $(CROSS_ARCHES)

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
