#!/bin/sh
# Finishing a switch: a run killed or signalled after it moved current is
# finished by the next command that takes the lock, from where it stopped
# (restart, check, prune, or the switch back), and the exit status says
# what happened: 4 and 5 win over 128+N, a signal during the check is not
# a verdict on the release.
. "$(dirname "$0")/lib.sh"

make_app
# A restart command that can be slowed down, so that a test can stop deploy
# while it runs. It starts slowly only for a release without CRASH (so the
# failing release fails at once and the switch back's restart is the slow
# one). It runs in the release.
cat >"$T/slowrestart.sh" <<EOF
#!/bin/sh
echo "\$(pwd)" >>"$T/restarts"
# a folder where the switch's temp link goes: the next switch fails
if [ -e "$T/block.switch" ]; then
	mkdir -p "$ROOT/.current.tmp/x"
	# and no previous link naming the release to go back to, so the
	# switch back cannot swap the two links either: it takes the temp link
	rm -f "$ROOT/previous"
fi
if [ ! -e CRASH ] && [ -s "$T/restart.delay" ]; then
	touch "$T/restart.go"
	sleep "\$(cat "$T/restart.delay")"
fi
exec supervisorctl -c "$SVCONF" restart app
EOF
# A check that can be slowed down the same way; its slow try fails (an
# app not quite up yet), so only a later try can pass.
cat >"$T/slowcheck.sh" <<EOF
#!/bin/sh
if [ -s "$T/check.delay" ]; then
	touch "$T/check.go"
	sleep "\$(cat "$T/check.delay")"
	rm -f "$T/check.delay"
	echo "slowcheck: not up yet"
	exit 1
fi
exec python health.py "$APPSTATE"
EOF
NOTIFY='notify = sh -c "echo \$DEPLOY_EVENT \$DEPLOY_STATUS >>'"$T"'/notified"'
setup_root "restart = sh $T/slowrestart.sh" "check = sh $T/slowcheck.sh" \
    "check_timeout = 10" "keep = 2" "$NOTIFY"

# slow_restart SECONDS / slow_check SECONDS: 0 for full speed
slow_restart() {
	if [ "$1" = 0 ]; then rm -f "$T/restart.delay"; else echo "$1" >"$T/restart.delay"; fi
	rm -f "$T/restart.go"
}
slow_check() {
	if [ "$1" = 0 ]; then rm -f "$T/check.delay"; else echo "$1" >"$T/check.delay"; fi
	rm -f "$T/check.go"
}

crash_commit() {
	touch "$APP/CRASH"
	new_commit "$1"
	rm "$APP/CRASH"
}

# ---- 13: SIGTERM during a first deploy's failing restart: 5, not 143
Z=$(crash_commit crash-first)
slow_restart 0
bg_deploy first deploy
ok "the first deploy reaches its restart" wait_for 60 test -s "$T/restarts"
kill -TERM "$bgpid"
bg_wait
is "$bgrc" 5 "SIGTERM during a failing first restart: exit 5, not 143"
[ "$bgrc" = 5 ] || show_bg
is "$(list_state "$Z")" failed "the release is recorded failed"

# ---- prepare of a failed current release restarts nothing
nrestarts=$(wc -l <"$T/restarts")
run_deploy prepare
rc_is 0 "prepare of the failed current release: exit 0"
is "$(last_line)" "$Z" "it prints the sha"
is "$(wc -l <"$T/restarts")" "$nrestarts" "and restarts nothing"

# ---- prune never removes current, even a failed one (exit 5 above left
# a failed first release as current, with nothing to go back to)
run_deploy prune
rc_is 5 "prune with a failed current release that does not start: exit 5 (it is down: a person must look)"
ok "the failed current release stays" real_dir "$ROOT/releases/$Z"
is "$(list_mark "$Z")" current "list still marks it current"

A=$(new_commit v1)
run_deploy deploy
rc_is 0 "a good release after it: exit 0"
ok "the app runs from it" app_runs_from "$A"

# ---- 13: SIGTERM during a failing restart with a release to go back to
F=$(crash_commit crash-two)
slow_restart 2
rm -f "$T/restarts"
bg_deploy second deploy
ok "the deploy reaches the failing restart" wait_for 60 test -s "$T/restarts"
kill -TERM "$bgpid"
bg_wait
is "$bgrc" 4 "SIGTERM during a failing restart: the switch back runs, exit 4, not 143"
[ "$bgrc" = 4 ] || show_bg
is "$(current_link)" "releases/$A" "current is back on the previous release"
ok "which runs" app_runs_from "$A"
ok "nothing is left pending" absent "$ROOT/.deploy/pending"

# ---- 3: killed while restarting the previous release in the switch back
G=$(crash_commit crash-three)
slow_restart 3
bg_deploy killback deploy
ok "the switch back's restart starts" wait_for 60 test -e "$T/restart.go"
kill -9 "$bgpid"
bg_wait
slow_restart 0
is "$(current_link)" "releases/$A" "killed there: current is the previous release"
isnt "$(app_state)" RUNNING "and the app is down (its restart never ran)"
rm -f "$T/notified"
run_deploy activate "$A"
rc_is 4 "the next command finishes the switch back first and says so (exit 4)"
is "$(cat "$T/notified" 2>/dev/null)" "activate 4" "notify is told, with the status the finish decided"
ok "the previous release runs again" app_runs_from "$A"
like "$(out)" "*finishing*" "it says it finishes the interrupted run"
is "$(list_state "$G")" failed "the failed release is recorded failed"
ok "nothing is left pending" absent "$ROOT/.deploy/pending"

# ---- 3: killed between recording the failure and the switch back: with
# previous naming the release to go back to, the switch back is the one
# renameat2(RENAME_EXCHANGE) of previous and current deploy makes in its
# own process (the switch renames its temp links with renameat)
H=$(crash_commit crash-four)
run timeout 120 env DEPLOY_TEST_MARK=inject strace -o /dev/null \
    -e trace=renameat2 -e inject=renameat2:signal=KILL:when=1 \
    "$DEPLOY" -C "$ROOT" deploy
is "$rc" 137 "deploy is killed (by strace) at the switch back's exchange"
is "$(current_link)" "releases/$H" "killed before the switch back: current is still the failed release"
grep_ok "the history says it failed" "$ROOT/.deploy/history" " failed $H\$"
run_deploy deploy
rc_is 4 "the next deploy switches back (exit 4), not 'nothing to go back to' (5)"
is "$(current_link)" "releases/$A" "current is the previous release"
ok "which runs" app_runs_from "$A"
grep_nok "it never says there is nothing to go back to" "$T/err" "no release to go back to"

# ---- a switch back whose rename fails keeps "back" for the next run
I=$(crash_commit crash-five)
touch "$T/block.switch"
run_deploy deploy
rm -f "$T/block.switch"
rc_is 5 "the switch back cannot rename: exit 5"
is "$(current_link)" "releases/$I" "current is still the failed release"
grep_ok "the switch back stays pending" "$ROOT/.deploy/pending" "^back $I $A "
rm -rf "$ROOT/.current.tmp"
run_deploy deploy
rc_is 4 "the next deploy switches back (exit 4), not 'nothing to go back to'"
is "$(current_link)" "releases/$A" "current is the previous release"
ok "which runs" app_runs_from "$A"

# ---- pending cannot be written: no switch at all
mkdir -p "$ROOT/.deploy/pending.tmp/x"
J=$(new_commit v-j)
run_deploy deploy
rc_is 1 "pending cannot be recorded: exit 1"
is "$(current_link)" "releases/$A" "current unchanged"
rm -rf "$ROOT/.deploy/pending.tmp"

# ---- 4: resuming a killed deploy finishes it, prune included
B=$(new_commit v2)
run_deploy deploy
rc_is 0 "v2 deployed"
C=$(new_commit v3)
slow_restart 3
# J (complete, never live) went with v2's prune: a release that never
# went live is neither kept nor a rollback target (issue 30)
ok "J, never live, went with v2's prune" absent "$ROOT/releases/$J"
bg_deploy killrestart deploy
ok "its restart starts" wait_for 60 test -e "$T/restart.go"
kill -9 "$bgpid"
bg_wait
slow_restart 0
is "$(current_link)" "releases/$C" "killed after the switch: current is the new release"
ok "the old one still runs (its restart was killed)" app_runs_from "$B"
run_deploy deploy
rc_is 0 "the next deploy finishes it: exit 0"
ok "the new release runs" app_runs_from "$C"
ok "and it was pruned: keep = 2 leaves current and the rollback target" \
    absent "$ROOT/releases/$A"
grep_ok "the finish says its prune ran" "$T/out" '^\[[0-9]+\] prune ok'
is "$(list_state "$B")" complete "the rollback target stays"

# ---- 4: other commands that take the lock finish it too
D=$(new_commit v4)
slow_restart 3
bg_deploy killprune deploy
ok "its restart starts" wait_for 60 test -e "$T/restart.go"
kill -9 "$bgpid"
bg_wait
slow_restart 0
ok "the old one still runs" app_runs_from "$C"
run_deploy prune
rc_is 0 "prune finishes the interrupted deploy first: exit 0"
ok "the new release runs" app_runs_from "$D"
grep_ok "its check ran" "$ROOT/.deploy/logs/$D.log" "check ok"

# ---- 7: a signal during the check does not mark a good release failed
# (the check's try that the signal interrupts fails, as a first try often
# does while the app starts)
E=$(new_commit v5)
slow_check 2
bg_deploy checkterm deploy
ok "the check starts" wait_for 60 test -e "$T/check.go"
kill -TERM "$bgpid"
bg_wait
slow_check 0
is "$bgrc" 143 "SIGTERM during the check: exit 143"
[ "$bgrc" = 143 ] || show_bg
is "$(current_link)" "releases/$E" "current stays on the new release (fully switched)"
is "$(list_state "$E")" complete "the release is not recorded failed"
ok "the switch is left pending for the next run" test -s "$ROOT/.deploy/pending"
run_deploy deploy
rc_is 0 "the next run checks it and is done: exit 0"
ok "the new release runs" app_runs_from "$E"
grep_ok "the check passed" "$T/out" "check ok"
ok "nothing is left pending" absent "$ROOT/.deploy/pending"

done_testing
