#!/bin/sh
# deploy under valgrind --leak-check=full: a full first deploy (venv, pip,
# tests, switch, restart, prune), a second deploy, a rollback, list, status,
# a failed build and a config error.  No invalid access, no uninitialised
# value, no lost block, in deploy or in the processes it forks (what they
# exec is not traced).
. "$(dirname "$0")/lib.sh"
SEED_VENV=0	# the first deploy builds its venv: that is tested here
. "$TESTDIR/hostile.sh"

if ! command -v valgrind >/dev/null 2>&1; then
	echo "1..0 # SKIP valgrind is not installed"
	exit 0
fi
# no ELF interpreter: a static binary (make static), whose libc valgrind
# cannot see into; its reports would be musl's, not deploy's
if ! readelf -l "$DEPLOY" 2>/dev/null | grep -q INTERP; then
	echo "1..0 # SKIP $DEPLOY is statically linked"
	exit 0
fi
if [ -n "${DEPLOY_SANITIZED:-}" ]; then
	echo "1..0 # SKIP an ASan build cannot run under valgrind"
	exit 0
fi
# valgrind is slow to start; the restart and check steps are not
: "${DEPLOY_TEST_LIMIT:=600}"

setup_root
A=$(sha_of HEAD)

vg_run deploy
rc_is 0 "a full first deploy under valgrind exits 0"
is "$(current_link)" "releases/$A" "current is A"
ok "the app runs from A" app_runs_from "$A"
grep_ok "the venv and pip steps ran" "$T/out" "^\[[0-9]+\] pip ok"
vg_clean "valgrind: the first deploy is clean"

B=$(new_commit v2)
vg_run deploy
rc_is 0 "a second deploy under valgrind exits 0"
is "$(current_link)" "releases/$B" "current is B"
ok "the app runs from B" app_runs_from "$B"
vg_clean "valgrind: the second deploy is clean"

vg_run rollback
rc_is 0 "a rollback under valgrind exits 0"
is "$(current_link)" "releases/$A" "current is A again"
ok "the app runs from A" app_runs_from "$A"
vg_clean "valgrind: the rollback is clean"

vg_run list
rc_is 0 "list under valgrind exits 0"
vg_clean "valgrind: list is clean"
vg_run status
rc_is 0 "status under valgrind exits 0"
vg_clean "valgrind: status is clean"

touch "$APP/FAIL_TESTS"
C=$(new_commit broken)
vg_run deploy
rc_is 1 "a failed build under valgrind exits 1"
is "$(current_link)" "releases/$A" "current unchanged"
ok "no release of the failed build left" absent "$ROOT/releases/$C"
vg_clean "valgrind: the failed build is clean"
rm "$APP/FAIL_TESTS"

write_conf "keep = 1"
vg_run deploy
rc_is 2 "a config error under valgrind exits 2"
vg_clean "valgrind: the config error is clean"

write_conf "keep = 2"
D=$(new_commit v4)
E=$(new_commit v5)
run_deploy deploy "$D"
rc_is 0 "deploy D (not traced)"
vg_run deploy
rc_is 0 "a deploy that prunes, under valgrind, exits 0"
is "$(releases)" "$(sorted_words "$D" "$E")" "it pruned down to keep = 2"
vg_clean "valgrind: the deploy that prunes is clean"

done_testing
