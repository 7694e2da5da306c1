#!/bin/sh
# Issue 21: ROOT/previous, the release current before the last switch
# (nginx serves old assets from it; test/51-frontdoor.t runs it under
# load).  Here, without a program, quickly: what previous names after a
# deploy, a rollback, an activate and a switch back; the swap of the two
# links in one renameat2(RENAME_EXCHANGE) when previous is the target;
# prune keeps the release previous names, even a failed one; a leftover
# temp link is removed; a previous deploy cannot replace is reported and
# the switch goes on.
. "$(dirname "$0")/lib.sh"

plan 37

make_app
setup_root -program "check = test ! -e BAD_CHECK" "check_timeout = 1"

prev() { readlink "$ROOT/previous" 2>/dev/null; }

# 1. first deploy: nothing before it
A=$(sha_of HEAD)
run_deploy deploy
rc_is 0 "deploy A"
ok "no previous after the first deploy" test ! -e "$ROOT/previous" -a ! -L "$ROOT/previous"

# 2. deploys: previous is the release left
B=$(new_commit vB)
run_deploy deploy
rc_is 0 "deploy B"
is "$(prev)" "releases/$A" "previous is a relative link to A"
C=$(new_commit vC)
run_deploy deploy
rc_is 0 "deploy C"
is "$(prev)" "releases/$B" "previous is B"

# strace_run DESC ARGS...: deploy ARGS under strace, its rename calls in
# $T/strace
strace_deploy() {
	run timeout -k 5 "$DEPLOY_TEST_LIMIT" strace -f -qq -o "$T/strace" \
	    -e trace=rename,renameat,renameat2 "$DEPLOY" -C "$ROOT" "$@"
}

# 3. rollback: to B, which previous names: the two links swap at once
if command -v strace >/dev/null 2>&1; then
	strace_deploy rollback
	rc_is 0 "rollback (under strace)"
	grep_ok "previous and current swapped by one RENAME_EXCHANGE" "$T/strace" \
	    'renameat2\(.*"previous",.*"current", RENAME_EXCHANGE\) = 0'
	grep_nok "... and no rename over current" "$T/strace" \
	    'rename.*"\.current\.tmp"'
else
	run_deploy rollback
	rc_is 0 "rollback"
	pass "# SKIP no strace"
	pass "# SKIP no strace"
fi
is "$(current_link)" "releases/$B" "current is B"
is "$(prev)" "releases/$C" "previous is C, the release rolled back from"

# 4. activate a release previous does not name: previous moves first
if command -v strace >/dev/null 2>&1; then
	strace_deploy activate "$A"
	rc_is 0 "activate A (under strace)"
	_order=$(sed -n 's/.*rename[a-z0-9]*([^"]*"\([^"]*\)",[^"]*"\([^"]*\)".*/\2/p' \
	    "$T/strace" | grep -E '^(previous|current)$' | tr '\n' ' ')
	is "$_order" "previous current " "previous is renamed before current"
else
	run_deploy activate "$A"
	rc_is 0 "activate A"
	pass "# SKIP no strace"
fi
is "$(current_link)" "releases/$A" "current is A"
is "$(prev)" "releases/$B" "previous is B"

# 5. a release that fails its check: switched back, previous is it
touch "$APP/BAD_CHECK"
D=$(new_commit vD)
rm "$APP/BAD_CHECK"
run_deploy deploy
rc_is 4 "D fails its check: exit 4"
is "$(current_link)" "releases/$A" "current is A again"
is "$(prev)" "releases/$D" "previous is D, which served until the switch back"

# 6. prune keeps what previous names
run_deploy prune -n -k 2
unlike "$(out)" "*$D*" "prune -n would not remove D"
run_deploy prune -k 2
rc_is 0 "prune -k 2"
ok "the failed D stays: previous names it" test -d "$ROOT/releases/$D"
ok "... and previous resolves" test -d "$ROOT/previous/"

# 7. the next switch moves previous on; then D can go
E=$(new_commit vE)
run_deploy deploy
rc_is 0 "deploy E"
is "$(prev)" "releases/$A" "previous is A"
run_deploy prune -k 2
ok "prune removes D now" test ! -e "$ROOT/releases/$D"

# 8. a temp link a killed switch left is removed by the next run
ln -s releases/nothing "$ROOT/.previous.tmp"
run_deploy prune
rc_is 0 "prune with a leftover .previous.tmp"
like "$(out)" "*nothing to prune*" "and nothing else to prune: it says so"
ok "the leftover is gone" test ! -L "$ROOT/.previous.tmp"

# 9. a previous deploy cannot replace: said so, the switch goes on
rm "$ROOT/previous"
mkdir -p "$ROOT/previous/x"
F=$(new_commit vF)
run_deploy deploy
rc_is 0 "a previous that is a folder: the deploy still succeeds"
is "$(current_link)" "releases/$F" "current is F"
like "$(err)" "*previous*may miss their assets*" "and deploy says old pages may miss assets"
ok "the folder is left alone" test -d "$ROOT/previous/x"
ok "no temp link is left" test ! -L "$ROOT/.previous.tmp"
rm -r "$ROOT/previous"
G=$(new_commit vG)
run_deploy deploy
is "$(prev)" "releases/$F" "once it is gone, previous is set again"

# 10. a folder in the temp link's place is not taken for the link
rm "$ROOT/previous"
mkdir -p "$ROOT/.previous.tmp/x"
H=$(new_commit vH)
run_deploy deploy
rc_is 0 "a folder named .previous.tmp: the deploy still succeeds"
like "$(err)" "*previous*may miss their assets*" "and says so"
ok "the folder did not become previous" test ! -e "$ROOT/previous"
rm -r "$ROOT/.previous.tmp"

done_testing
