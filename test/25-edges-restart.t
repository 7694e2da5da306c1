#!/bin/sh
# Test and restart at the edges: a test suite exiting 2 or 5 (pytest's
# "interrupted" and "no tests") fails the deploy; an app that crashes at
# start with no `check` configured is caught by the restart step (exit 4,
# switched back); a supervisord.conf committed in the app does not choose
# the supervisord that deploy restarts.
. "$(dirname "$0")/lib.sh"

setup_root
A=$(sha_of HEAD)
run_deploy deploy
rc_is 0 "first deploy (A)"
ok "the app runs from A" app_runs_from "$A"

# ---- test exit statuses that are not a pass
B=$(new_commit v2)
for st in 2 5; do
	write_conf "test = sh -c \"exit $st\""
	run_deploy deploy "$B"
	rc_is 1 "a test step exiting $st fails the deploy: exit 1"
	grep_ok "the test step is reported as failed" "$T/err" \
		"^\[[0-9]+\] test FAILED.*exit status $st"
	is "$(current_link)" "releases/$A" "current unchanged"
	ok "no releases/B left" absent "$ROOT/releases/$B"
done

# ---- an app that crashes at once, no check configured
write_conf
: >"$APP/CRASH"
C=$(new_commit v3-crash)
run_deploy deploy "$C"
rc_is 4 "a release whose app crashes at start: exit 4"
is "$(current_link)" "releases/$A" "current is back on A"
ok "the app runs again, from A" app_runs_from "$A"
git -C "$APP" rm -q CRASH

# ---- a supervisord.conf committed in the app
mkdir -p "$T/dev"
{
	supervisord_head "$T/dev.sock" "$T/dev"
	cat <<EOF
[program:app]
directory=$T/dev
command=/bin/sh -c "echo started >>$T/dev/app.started; exec sleep 1000"
autostart=false
startsecs=0
EOF
} >"$T/dev/supervisord.conf"
supervisord -c "$T/dev/supervisord.conf" || bail "dev supervisord did not start"
devsv() { "$PY" -S "$TESTDIR/svctl.py" "$T/dev.sock" "$@"; }
wait_for 15 supervisord_up "$T/dev.sock" "$T/dev/supervisord.pid" ||
	bail "the dev supervisord is not answering"
like "$(devsv status app 2>&1)" "app*STOPPED*" "a dev supervisord with its app stopped"
printf '[supervisorctl]\nserverurl=unix://%s\n' "$T/dev.sock" >"$APP/supervisord.conf"
D=$(new_commit v4-svconf)
write_conf "supervisorctl = supervisorctl"
run_deploy deploy "$D"
diag "deploy with supervisorctl and no -c: exit $rc"
like "$(devsv status app 2>&1)" "app*STOPPED*" \
	"the app's own supervisord.conf did not make deploy restart the dev supervisord's app"
ok "the dev app was never started" absent "$T/dev/app.started"
grep_nok "deploy did not report the restart as ok" "$T/out" "restart ok"
kill -TERM "$(cat "$T/dev/supervisord.pid")"	# its shutdown

done_testing
