#!/bin/sh
# State files survive an upgrade of the binary: the real 0098c49, built
# from the git history, is killed mid-restart and leaves its "SHA PREV"
# .deploy/pending; one run of the new binary finishes that switch: it
# restarts and checks the new release, or, when it will not start,
# switches back to the one before (exit 4) instead of saying all is well.
. "$(dirname "$0")/lib.sh"

OLD=$T/old0098
mkdir -p "$OLD"
if ! git -C "$TOP" cat-file -e '0098c49^{commit}' 2>/dev/null; then
	echo "1..0 # SKIP no git history with 0098c49 here"
	exit 0
fi
git -C "$TOP" archive 0098c49 | tar -x -C "$OLD" &&
	make -s -C "$OLD" deploy >/dev/null 2>&1 ||
	bail "cannot build 0098c49 from the git history"

# A restart that can be held: it writes its pid and waits while $T/hold
# exists, so that the old binary can be killed while it runs.
cat >"$T/holdrestart.sh" <<EOF
#!/bin/sh
if [ -e "$T/hold" ]; then
	echo \$\$ >"$T/held"
	while [ -e "$T/hold" ]; do sleep 0.1; done
	exit 1
fi
exec supervisorctl -c "$SVCONF" restart app
EOF
setup_root "restart = sh $T/holdrestart.sh" \
    "check = python health.py $APPSTATE" "check_timeout = 5"
A=$(sha_of HEAD)
run_deploy deploy
rc_is 0 "deploy A with the new binary"
ok "A runs" app_runs_from "$A"

# old_killed_in_restart: the old binary deploys HEAD and is killed with
# its restart command while that runs
old_killed_in_restart() {
	touch "$T/hold"
	rm -f "$T/held"
	env DEPLOY_TEST_MARK=old "$OLD/deploy" -C "$ROOT" deploy \
	    >"$T/old.out" 2>&1 </dev/null &
	_old=$!
	wait_for 120 test -s "$T/held" || diag "the old binary never restarted"
	kill -9 "$_old" "$(cat "$T/held")" 2>/dev/null
	wait "$_old" 2>/dev/null
	rm -f "$T/hold"
}

# ---- a good release: the new binary restarts and checks it
B=$(new_commit v2)
old_killed_in_restart
is "$(current_sha)" "$B" "the old binary switched current to B"
is "$(cat "$ROOT/.deploy/pending" 2>/dev/null)" "$B $A" \
    "and left its pending record: SHA PREV"
ok "A still runs (B was never restarted)" app_runs_from "$A"
run_deploy status
like "$(out)" "*pending: switched $B from $A (restart next)*" "status shows the pending switch"
run_deploy status --json
like "$(out)" "*\"pending\": {\"state\": \"switched\", \"sha\": \"$B\", \"previous\": \"$A\", \"prune\": false}*" \
    "status --json shows it"
like "$(out)" "*\"release\": \"$A\", \"current\": false*" "and that the program runs A, not current"
run_deploy deploy
rc_is 0 "the new binary: exit 0"
like "$(out)" "*finishing it now*" "it finishes the old binary's switch"
ok "B runs: restarted and checked" app_runs_from "$B"
absent "$ROOT/.deploy/pending" && pass "the record is gone" ||
	fail "the record is gone"

# ---- a release that will not start: switched back, exit 4
touch "$APP/CRASH"
C=$(new_commit crash)
rm "$APP/CRASH"
old_killed_in_restart
is "$(current_sha)" "$C" "the old binary switched current to the crashing C"
run_deploy deploy "$C"
rc_is 4 "the new binary: exit 4, not 'already current'"
is "$(current_sha)" "$B" "current is back on B"
ok "B runs" app_runs_from "$B"
is "$(list_state "$C")" failed "C is recorded failed"

# ---- a record no version wrote is dropped with a word
echo "garbage" >"$ROOT/.deploy/pending"
run_deploy deploy "$B"
rc_is 0 "an unreadable record: exit 0"
like "$(err)" "*pending: not a record this version reads; dropped*" \
    "and it says it dropped it"

done_testing
