#!/bin/sh
# What deploy says must be true at the edges too (issue 18, items 13, 17,
# 18): a failed release that is still current is restarted and checked
# again, as -n says; notify fires only when something was attempted, and
# names the release that failed when a run finishes an earlier switch.
. "$(dirname "$0")/lib.sh"

make_app
setup_root
# a restart that can be held for a release with CRASH (its own app
# crashes at once), so that a test can kill deploy while it runs; notify
# writes what it was told
cat >"$T/restart.sh" <<EOF
#!/bin/sh
if [ -e CRASH ] && [ -e "$T/hold" ]; then
	touch "$T/held"
	sleep 30
fi
exec supervisorctl -c "$SVCONF" restart app
EOF
NOTIFY="notify = sh -c 'env | grep ^DEPLOY_ | sort >$T/notified'"
write_conf "restart = sh $T/restart.sh" "check_timeout = 5" "$NOTIFY"
crash_commit() {
	touch "$APP/CRASH"
	new_commit "$1"
	rm "$APP/CRASH"
}

# ---- 13. a failed release that is still current (a first deploy, nothing
# to go back to) is restarted and checked again, never rebuilt (what
# deploy does, unchanged): -n says it, the docs say it
Z=$(crash_commit crash-first)
run_deploy deploy
rc_is 5 "a first deploy whose app crashes: exit 5, nothing to go back to"
is "$(list_state "$Z")" failed "it is recorded failed, and stays current"
run_deploy -n
rc_is 0 "deploy -n of it"
like "$(out)" "*current but failed its last restart or check: would restart and check it again*" \
    "-n says it would restart and check it again, not 'nothing to do'"
ok "docs/commands.md says so" sh -c "tr '\n' ' ' <'$TOP/docs/commands.md' | grep -q 'is still current .* restarted and checked again'"

W=$(new_commit v1)
run_deploy deploy
rc_is 0 "a good release after it"
grep_ok "a deploy that switched notifies" "$T/notified" "^DEPLOY_REVISION=$W\$"

# ---- 18. no notify after a typo: nothing attempted, nothing told
rm -f "$T/notified"
run_deploy deploy no-such-branch
rc_is 2 "deploy of a misspelled ref: exit 2"
ok "notify did not run" absent "$T/notified"
run_deploy activate deadbeef
rc_is 2 "activate deadbeef: exit 2"
ok "notify did not run either" absent "$T/notified"
run_deploy deploy
rc_is 0 "deploy of what is current: nothing to do"
ok "nothing attempted, nothing told" absent "$T/notified"
run_deploy activate "$Z"
rc_is 2 "activate of a failed release: exit 2"
ok "no notify" absent "$T/notified"

# ---- 17. a command that finishes an earlier run's switch tells notify
# which release failed, which is current now, and the failed one's log
V=$(crash_commit crash-two)
touch "$T/hold"
bg_deploy held deploy
ok "the crashing release's restart is reached" wait_for 60 test -e "$T/held"
kill -9 "$bgpid"
bg_wait
rm -f "$T/hold" "$T/notified"
is "$(current_link)" "releases/$V" "killed during its restart: current is the crashing release"
run_deploy deploy
rc_is 4 "the next deploy finishes it: switched back, exit 4"
is "$(current_link)" "releases/$W" "current is the release before it"
grep_ok "notify: DEPLOY_REVISION is the release that failed" "$T/notified" "^DEPLOY_REVISION=$V\$"
grep_ok "DEPLOY_PREVIOUS the one now current" "$T/notified" "^DEPLOY_PREVIOUS=$W\$"
grep_ok "DEPLOY_LOG its log" "$T/notified" "^DEPLOY_LOG=$ROOT/.deploy/logs/$V.log\$"
grep_ok "DEPLOY_STATUS 4" "$T/notified" "^DEPLOY_STATUS=4\$"

done_testing
