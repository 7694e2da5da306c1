# deploy: atomic deployments for a Python web app
PREFIX ?= /usr/local
MANDIR ?= $(PREFIX)/share/man
CC ?= cc
CFLAGS ?= -O2 -g
WFLAGS = -std=c99 -Wall -Wextra -pedantic
# the version -V prints: the git describe of the build, else the release number
VERSION != git describe --tags --always --dirty 2>/dev/null || echo 0.3
SANFLAGS = -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all

all: deploy

deploy: deploy.c deploy.h
	$(CC) $(WFLAGS) $(CFLAGS) $(CPPFLAGS) -DVERSION='"$(VERSION)"' $(LDFLAGS) -o $@ deploy.c

test/unit: test/unit.c deploy.c deploy.h
	$(CC) $(WFLAGS) $(CFLAGS) -DDEPLOY_CORE_ONLY -I. -o $@ test/unit.c deploy.c

# the slow random-kill loop first, so that -j2 overlaps it with the rest
test: deploy test/unit
	./test/unit
	prove -j2 test/20-kill-loop.t $$(ls test/*.t | grep -v 20-kill-loop)

# the whole suite again, built with AddressSanitizer and UBSan
test-asan:
	$(MAKE) clean
	ASAN_OPTIONS=detect_leaks=0 DEPLOY_SANITIZED=1 $(MAKE) CC=clang CFLAGS="$(SANFLAGS)" LDFLAGS="-fsanitize=address,undefined" test
	$(MAKE) clean

fuzz: test/fuzz.c deploy.c deploy.h
	clang $(WFLAGS) -g -O1 -fsanitize=fuzzer,address,undefined -DDEPLOY_CORE_ONLY -I. -o test/fuzz test/fuzz.c deploy.c
	mkdir -p test/fuzz-work
	./test/fuzz -max_total_time=$${FUZZ_SECONDS:-60} test/fuzz-work test/corpus

bench: deploy
	sh bench/run

install: deploy
	mkdir -p $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(MANDIR)/man1
	cp deploy $(DESTDIR)$(PREFIX)/bin/deploy
	cp deploy.1 $(DESTDIR)$(MANDIR)/man1/deploy.1

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/deploy $(DESTDIR)$(MANDIR)/man1/deploy.1

clean:
	rm -f deploy test/unit test/fuzz

.PHONY: all test test-asan fuzz bench install uninstall clean
