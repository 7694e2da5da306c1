#!/bin/sh
# Messages that say what to do (issue 18, items 5-9), against a real
# supervisord:
#   5. a program name supervisord does not know: the names it knows that
#      are close, and "did you mean web:*?" for a group's processes;
#   6. "ERROR (no such file)" from a restart: the program's command= names
#      a file that is not in the release (not "its output is empty");
#   7. supervisord's socket that the user running deploy may not use: said
#      so, with chown= under [unix_http_server], not a Python exception;
#   8. a config owned by another user: that user's name, and who runs deploy;
#   9. a group's failed restart: the failing process's own output, taken
#      before the switch back.
. "$(dirname "$0")/lib.sh"

# supervisord with the test app, a group web of two processes (never
# started), a group worker of one running app.py from current, and serve,
# run from current/bin/serve
make_app
mkdir -p "$APP/bin"
printf '#!/bin/sh\nexec sleep 1000\n' >"$APP/bin/serve"
chmod 0755 "$APP/bin/serve"
A=$(new_commit v1-serve)
{
	supervisord_head "$T/supervisor.sock" "$T"
	app_program "$ROOT" "$APPSTATE" "$T/app.log"
	cat <<EOF

[program:web]
process_name=%(program_name)s_%(process_num)02d
numprocs=2
directory=$ROOT/current
command="$ROOT/current/.venv/bin/python" app.py
autostart=false
autorestart=false
startsecs=0
startretries=0
stopwaitsecs=5
redirect_stderr=true

[program:worker]
process_name=%(program_name)s_%(process_num)02d
numprocs=1
directory=$ROOT/current
command="$ROOT/current/.venv/bin/python" app.py
autostart=false
autorestart=false
startsecs=0
startretries=0
stopwaitsecs=5
redirect_stderr=true

[program:serve]
directory=$ROOT/current
command=$ROOT/current/bin/serve
autostart=false
autorestart=false
startsecs=0
startretries=0
stopwaitsecs=5
EOF
} >"$SVCONF"
supervisord -c "$SVCONF" || bail "supervisord did not start"
wait_for 15 sv_up || bail "supervisord not answering"
setup_root "program = web:*"
CONF=$ROOT/shared/deploy.conf

# ---- 5. a group written as a program
write_conf "program = web"
run_deploy deploy
rc_is 2 "program = web where web:* was meant: exit 2"
like "$(err)" "*program web: supervisord does not know it; it knows web:web_00, web:web_01 -> did you mean web:\\*\\?*" \
	"it lists the group's processes and suggests web:*"
unlike "$(err)" "*add a \\[program:web\\]*" "it does not say to add a [program:web] section"
write_conf "program = serv"
run_deploy -n deploy
like "$(err)" "*it knows serve -> did you mean serve\\?*" "a name a letter away: did you mean serve?"

# ---- 8. an owner shown by name
chown nobody "$CONF"
run_deploy -n deploy
rc_is 2 "a config owned by nobody: exit 2"
like "$(err)" "*$CONF: owned by uid 65534 (nobody), not by root or by the user running deploy (uid 0, root)*" \
	"the owner and the user running deploy, by number and by name"
chown 0 "$CONF"

# ---- 7. a socket the user running deploy may not use (supervisord's
# default chmod is 0700, owned by root)
chmod 0755 "$T"
write_conf "program = worker:*"
chmod 0644 "$CONF"
run timeout -k 5 60 setpriv --reuid=65534 --regid=65534 --clear-groups \
    env HOME=/ "$DEPLOY" -C "$ROOT" deploy
rc_is 2 "deploy as nobody, socket 0700 root: exit 2"
like "$(err)" "*the user running deploy (uid 65534, nobody) may not use supervisord's socket*chown=*\\[unix_http_server\\]*" \
	"it says the user may not use the socket, and points to chown="
unlike "$(err)" "*PermissionError*" "no Python exception"

# ---- 9. a group whose new release crashes at start
write_conf "program = worker:*"
run_deploy deploy "$A"
rc_is 0 "A deploys with program = worker:*"
like "$(svctl status 'worker:*')" "*worker_00*RUNNING*" "the group's process runs"
: >"$APP/CRASH"
B=$(new_commit v2-crash)
run_deploy deploy "$B"
rc_is 4 "B crashes at start: exit 4, switched back"
like "$(err)" "*the end of program worker:worker_00's output*app: CRASH present, exiting at once*" \
	"the failing process's own output is shown"
unlike "$(err)" "*the output of each process*" "not just where to look"
is "$(current_sha)" "$A" "current is A again"
git -C "$APP" rm -q CRASH

# ---- 6. command= names a file the new release does not have
write_conf "program = serve"
git -C "$APP" rm -q bin/serve
C=$(new_commit v3-no-serve)
run_deploy deploy "$C"
rc_is 4 "C has no bin/serve: exit 4"
like "$(err)" "*serve is * not RUNNING: supervisord found no file to run: the command= of \\[program:serve\\] names a file that is not in the release*" \
	"the restart failure says command= names a file not in the release"
like "$(err)" "*program serve has no output: it never started*" \
	"instead of 'its own output is empty'"
unlike "$(err)" "*output*is empty*" "not 'its own output is empty'"
is "$(current_sha)" "$A" "current is A again"
like "$(svctl status serve)" "*RUNNING*" "serve runs again, from A"

done_testing
