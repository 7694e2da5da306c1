#!/bin/sh
# After the switch: a release whose app dies at once, a failing health
# check, or a failing restart command switch back to the previous release,
# restart it (RUNNING, from its own folder) and exit 4; the failed release
# is listed as failed, never chosen by rollback, and pruned first.  With
# nothing to go back to: exit 5.  A passing check: exit 0.
. "$(dirname "$0")/lib.sh"

make_app
# a restart command that fails while the release holds BAD_RESTART
cat >"$APP/restart.sh" <<'EOF'
#!/bin/sh
# usage: restart.sh SUPERVISORD.CONF
if [ -e BAD_RESTART ]; then
	echo "restart.sh: refusing (BAD_RESTART)" >&2
	exit 3
fi
exec supervisorctl -c "$1" restart app
EOF
chmod +x "$APP/restart.sh"

CHECK="check = python health.py $APPSTATE $T/checkruns"
setup_root "$CHECK" "check_timeout = 5"

# ---- the very first release dies at once: nothing to go back to
touch "$APP/CRASH"
Z=$(new_commit crash-first)
rm "$APP/CRASH"
run_deploy deploy
rc_is 5 "the first release failing its restart, with nothing to go back to: exit 5"
ok "the message says what state the root is in" [ -s "$T/err" ]
diag "exit 5 said: $(head -n 3 "$T/err")"

# ---- a good release, with a passing check
A=$(new_commit v2)
run_deploy deploy
rc_is 0 "a release that starts and passes its check: exit 0"
is "$(current_link)" "releases/$A" "current is it"
ok "the app runs from it" app_runs_from "$A"
grep_ok "the check ran for it" "$T/checkruns" "^rev=$A "
grep_ok "the check step is reported ok" "$T/out" "^\[[0-9]+\] check ok "

# ---- the app exits at once
touch "$APP/CRASH"
F=$(new_commit crash)
rm "$APP/CRASH"
pid=$(app_pid)
run_deploy deploy
rc_is 4 "an app that exits at once: exit 4"
is "$(current_link)" "releases/$A" "current is back on the previous release"
is "$(app_state)" RUNNING "the previous release is RUNNING again"
is "$(app_cwd)" "$ROOT/releases/$A" "from its own folder"
isnt "$(app_pid)" "$pid" "(restarted, as it must be after a switch back)"
ok "the failed release stays on disk" [ -d "$ROOT/releases/$F" ]
is "$(list_state "$F")" failed "list shows it failed"
grep_ok "stderr names the restart" "$T/err" "restart"
run_deploy status
isnt "$(sed -n 's/^rollback: //p' "$T/out")" "$F" "status never offers it for rollback"

# ---- the health check fails
touch "$APP/BAD_HEALTH"
G=$(new_commit unhealthy)
rm "$APP/BAD_HEALTH"
t0=$(now_ms)
run_deploy deploy
t1=$(now_ms)
rc_is 4 "a failing check: exit 4"
is "$(current_link)" "releases/$A" "current is back on the previous release"
ok "which runs again, from its own folder" app_runs_from "$A"
is "$(list_state "$G")" failed "list shows the unhealthy release failed"
grep_ok "stderr names the check" "$T/err" "check FAILED"
ok "the check was retried until check_timeout (ran $(grep -c "^rev=$G " "$T/checkruns") times)" \
	[ "$(grep -c "^rev=$G " "$T/checkruns")" -ge 2 ]
ok "for about check_timeout=5 s ($((t1 - t0)) ms in all)" [ $((t1 - t0)) -ge 4500 ]

# ---- a good one after the failures
B=$(new_commit v3)
run_deploy deploy
rc_is 0 "a good release after the failures deploys"
ok "the app runs from it" app_runs_from "$B"
is "$(list_mark "$A")" rollback "rollback would pick A, not the failed releases"

# ---- a failing restart command
write_conf "$CHECK" "check_timeout = 5" "restart = ./restart.sh $SVCONF"
touch "$APP/BAD_RESTART"
H=$(new_commit bad-restart)
rm "$APP/BAD_RESTART"
run_deploy deploy
rc_is 4 "a restart command exiting non-zero: exit 4"
is "$(current_link)" "releases/$B" "current is back on the previous release"
ok "which runs again, from its own folder" app_runs_from "$B"
is "$(list_state "$H")" failed "list shows it failed"
I=$(new_commit v4)
run_deploy deploy
rc_is 0 "the restart command works for a good release"
ok "the app runs from it" app_runs_from "$I"

# ---- rollback and activate skip failed releases
run_deploy rollback
rc_is 0 "rollback exits 0"
is "$(current_link)" "releases/$B" "rollback from I goes to B, skipping failed H"
ok "the app runs from B" app_runs_from "$B"
run_deploy rollback
rc_is 0 "rollback again exits 0"
is "$(current_link)" "releases/$A" "rollback from B goes to A, skipping G and F"
run_deploy activate "$F"
isnt "$rc" 0 "activate of a failed release is refused"
is "$(current_link)" "releases/$A" "current unchanged"

# ---- prune removes failed releases first
run_deploy activate "$I"
rc_is 0 "back to I"
run_deploy -k 2 prune
rc_is 0 "prune -k 2"
for x in "$Z" "$F" "$G" "$H"; do
	ok "prune removed failed release $(printf %.7s "$x")" absent "$ROOT/releases/$x"
done
ok "and kept the good ones" test -d "$ROOT/releases/$I" -a -d "$ROOT/releases/$B"

done_testing
