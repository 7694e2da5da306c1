# deploy: atomic deployments for a Python web app
PREFIX ?= /usr/local
MANDIR ?= $(PREFIX)/share/man
CC ?= cc
CFLAGS ?= -O2 -g
WFLAGS = -std=c99 -Wall -Wextra -pedantic
# src/ keeps these too: a local that hides another, a string literal
# written through, a function others call that no header declares
SRCWFLAGS = $(WFLAGS) -Wshadow -Wwrite-strings -Wmissing-prototypes
# the version -V prints: the git describe of the build, else the release number
VERSION != git describe --tags --always --dirty 2>/dev/null || echo 0.3
# make static: musl-gcc (Debian's musl-tools), size-optimised, stripped
MUSLCC = musl-gcc
STATICFLAGS = -Os -ffunction-sections -fdata-sections \
	-fno-asynchronous-unwind-tables -fno-unwind-tables
STATIC = deploy-static
STATIC_MAX = 286720
SANFLAGS = -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all

# the program: src/, one job per file (README, "The source"); each file
# compiles to its own object, and -MMD's dependency files say which
# headers it reads, so a change to one file rebuilds that one object
SRCS = $(wildcard src/*.c)
OBJS = $(SRCS:.c=.o)
# the pure core, free of I/O: the unit test and the fuzz target link it alone
CORE = src/core.c src/order.c src/reqs.c src/sha256.c src/json.c src/tail.c src/rpcparse.c

all: deploy

deploy: $(OBJS)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $(OBJS)

.c.o:
	$(CC) $(SRCWFLAGS) $(CFLAGS) $(CPPFLAGS) -MMD -MP -c -o $@ $<

# only main.c prints the version: only it rebuilds when the version changes
src/main.o: src/main.c .version
	$(CC) $(SRCWFLAGS) $(CFLAGS) $(CPPFLAGS) -DVERSION='"$(VERSION)"' -MMD -MP -c -o $@ src/main.c

.version: FORCE
	@echo '$(VERSION)' | cmp -s - $@ || echo '$(VERSION)' >$@

-include $(OBJS:.o=.d)

# a fully static binary that runs on any Linux of the same architecture
static: $(STATIC)

$(STATIC): $(SRCS) $(wildcard src/*.h)
	$(MUSLCC) $(SRCWFLAGS) -Werror $(STATICFLAGS) -DVERSION='"$(VERSION)"' -static -s \
	    -Wl,--gc-sections -Wl,-z,noseparate-code -o $@ $(SRCS)
	@size=$$(wc -c <$@); echo "$@: static, stripped, $$size bytes"; \
	if [ $$size -gt $(STATIC_MAX) ]; then \
		echo "$@: larger than $(STATIC_MAX) bytes" >&2; rm -f $@; exit 1; \
	fi

# the Debian packages the build, the tests and the demo need: installs
# the missing ones as root, else prints the apt-get line and fails
prereqs:
	@sh scripts/prereqs

test/unit: test/unit.c $(CORE) $(wildcard src/*.h)
	$(CC) $(WFLAGS) $(CFLAGS) -Isrc -o $@ test/unit.c $(CORE)

# the slowest files first, so that the others fill in around them; -j3
# on 2 cores: most of a test's time is spent waiting (supervisord, sleeps)
SLOW = test/20-kill-loop.t test/51-frontdoor.t test/28-operators.t \
	test/26-venv-derive.t test/70-ansible.t test/50-zero-downtime.t
# WITH_CACHE CMD: runs CMD with DEPLOY_TEST_CACHE naming a new folder where
# the files build their shared fixtures once (test/fixtures.sh), removed after:
# nothing carries over from one run to the next
WITH_CACHE = c=$$(mktemp -d "$${TMPDIR:-/tmp}/deploy-cache.XXXXXX") || exit 1; \
	trap 'rm -rf "$$c"' EXIT; trap 'exit 130' INT; trap 'exit 143' TERM; \
	DEPLOY_TEST_CACHE=$$c; export DEPLOY_TEST_CACHE;
test: prereqs deploy test/unit
	./test/unit
	$(WITH_CACHE) prove -j3 $(SLOW) $$(ls test/*.t | grep -v -F $(SLOW:test/%=-e %))

# a quick look (about 2 minutes on 2 cores): the unit test and the files
# that cover the main path: deploy, a failing build, rollback, the switch
# back, finishing a killed switch, preflight
QUICK = test/02-deploy.t test/03-fail.t test/05-rollback.t \
	test/11-switchback.t test/22-finish-switch.t test/23-first-minutes.t
test-quick: prereqs deploy test/unit
	./test/unit
	$(WITH_CACHE) prove -j2 $(QUICK)

# the whole suite again, built with AddressSanitizer and UBSan
test-asan:
	$(MAKE) clean
	ASAN_OPTIONS=detect_leaks=0 DEPLOY_SANITIZED=1 $(MAKE) CC=clang CFLAGS="$(SANFLAGS)" LDFLAGS="-fsanitize=address,undefined" test
	$(MAKE) clean

fuzz: test/fuzz.c $(CORE) $(wildcard src/*.h)
	clang $(WFLAGS) -g -O1 -fsanitize=fuzzer,address,undefined -Isrc -o test/fuzz test/fuzz.c $(CORE)
	mkdir -p test/fuzz-work
	./test/fuzz -max_total_time=$${FUZZ_SECONDS:-60} test/fuzz-work test/corpus

bench: deploy
	sh bench/run

# the end to end tour: see examples/demo.sh; DEMO_DIR moves its folder
DEMO_DIR = demo

demo: prereqs deploy
	DEPLOY="$${DEPLOY:-$(CURDIR)/deploy}" sh examples/demo.sh $(DEMO_DIR)

demo-clean:
	sh examples/demo.sh -c $(DEMO_DIR)

# INSTALLBIN: the binary to install, e.g. make install INSTALLBIN=deploy-static
INSTALLBIN = deploy

install: $(INSTALLBIN)
	mkdir -p $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(MANDIR)/man1
	cp $(INSTALLBIN) $(DESTDIR)$(PREFIX)/bin/deploy
	chmod 755 $(DESTDIR)$(PREFIX)/bin/deploy
	cp deploy.1 $(DESTDIR)$(MANDIR)/man1/deploy.1
	chmod 644 $(DESTDIR)$(MANDIR)/man1/deploy.1

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/deploy $(DESTDIR)$(MANDIR)/man1/deploy.1

clean:
	rm -f deploy $(STATIC) test/unit test/fuzz src/*.o src/*.d .version

FORCE:

.PHONY: FORCE all static prereqs test test-quick test-asan fuzz bench demo demo-clean install uninstall clean
