#!/bin/sh
# examples/crontab, examples/supervisord.conf and examples/app.service as
# written, with /var/www/example swapped for the test's root:
# - the crontab line, run the way cron runs it (/bin/sh -c, a bare
#   environment): a deploy that works prints nothing (cron mails nothing),
#   one that fails prints why and exits non-zero (cron mails it);
# - supervisord.conf starts a real supervisord that knows the program,
#   STOPPED, and deploy's preflight (-n) passes against it;
# - app.service passes systemd-analyze verify.
# examples/nginx.conf is run as written by test/51-frontdoor.t, with a real nginx.
. "$(dirname "$0")/lib.sh"

# swap FILE [ROOT]: FILE with the server's paths moved under $T
swap() {
	sed -e "s|/var/www/example|${2:-$ROOT}|g" \
	    -e "s|/run/supervisor-example|$T/ex|g" \
	    -e "s|/var/log/supervisor/example-supervisord.log|$T/ex.log|" \
	    -e "/^user=deploy\$/d" -e "/^chown=deploy:deploy\$/d" \
	    -e "s|^User=deploy\$|User=$(id -un)|" "$1"
}

# ---- crontab
setup_root
cp "$DEPLOY" "$ROOT/shared/deploy" || bail "cannot copy the binary"
A=$(sha_of HEAD)
line=$(grep -v '^#' "$TOP/examples/crontab" | grep -v '^[[:space:]]*$')
is "$(printf '%s\n' "$line" | wc -l)" 1 "crontab: one entry"
sched=$(printf '%s\n' "$line" | awk '{print $1, $2, $3, $4, $5}')
is "$sched" "*/5 * * * *" "crontab: every five minutes"
cmd=$(printf '%s\n' "$line" | cut -d' ' -f6- | sed "s|/var/www/example|$ROOT|g")
like "$cmd" "* -q *" "crontab: the command has -q"
# cron's environment: little more than HOME, PATH and SHELL; the pip
# settings a server keeps in pip.conf come in here as PIP_*
cron() {
	run env -i HOME="$T" PATH=/usr/bin:/bin SHELL=/bin/sh LOGNAME="$(id -un)" \
	    DEPLOY_TEST_T="$T" DEPLOY_TEST_MARK="$MARK" PIP_NO_INDEX=1 \
	    PIP_FIND_LINKS="$T/wheels" PIP_DISABLE_PIP_VERSION_CHECK=1 \
	    timeout -k 5 "$DEPLOY_TEST_LIMIT" /bin/sh -c "$cmd"
}
cron
rc_is 0 "crontab: the first run deploys"
is "$(cat "$T/out" "$T/err")" "" "crontab: and prints nothing (no mail)"
is "$(current_link)" "releases/$A" "crontab: current is the branch's head"
cron
rc_is 0 "crontab: a run with nothing new exits 0"
is "$(cat "$T/out" "$T/err")" "" "crontab: and prints nothing"
touch "$APP/FAIL_TESTS"
B=$(new_commit v2)
cron
isnt "$rc" 0 "crontab: a release whose tests fail: non-zero exit"
grep_ok "crontab: and says why (cron mails it)" "$T/err" 'test FAILED'
is "$(current_link)" "releases/$A" "crontab: current is still A"

# ---- supervisord.conf
stop_supervisord
swap "$TOP/examples/supervisord.conf" >"$T/ex.conf"
grep -q "^command=$ROOT/shared/deploy run " "$T/ex.conf" ||
	bail "no command= ... deploy run in supervisord.conf"
supervisord -c "$T/ex.conf" || bail "supervisord did not start with the example"
wait_for 10 supervisord_up "$T/ex.sock" "$T/ex.pid" ||
	bail "supervisord of the example not answering"
cp "$T/ex.pid" "$T/supervisord.pid"	# for cleanup
SVCONF=$T/ex.conf
st() { "$PY" -S "$TESTDIR/svctl.py" "$T/ex.sock" status example 2>&1; }
like "$(st)" "example*STOPPED*" "supervisord.conf: the program is known, STOPPED"
write_conf "program = example" "supervisorctl = supervisorctl -c $T/ex.conf"
run_deploy -n
rc_is 0 "supervisord.conf: deploy -n finds nothing missing"
unlike "$(cat "$T/out" "$T/err")" "*supervisor*not*" \
    "supervisord.conf: preflight has no complaint about supervisord"

# ---- app.service
if command -v systemd-analyze >/dev/null 2>&1; then
	# verify wants ExecStart= to exist: a root of its own whose
	# shared/deploy is /bin/true (nothing runs it)
	mkdir -p "$T/unit" "$T/uroot/shared"
	cp /bin/true "$T/uroot/shared/deploy"
	swap "$TOP/examples/app.service" "$T/uroot" >"$T/unit/app.service"
	run systemd-analyze verify "$T/unit/app.service"
	rc_is 0 "app.service: systemd-analyze verify passes"
	grep_ok "app.service: names the restart line for deploy.conf" \
	    "$TOP/examples/app.service" '^#[[:space:]]+restart = systemctl restart app$'
else
	pass "# SKIP systemd-analyze is not installed"
	pass "# SKIP systemd-analyze is not installed"
fi

done_testing
