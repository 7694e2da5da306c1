#!/bin/sh
# deploy run (issue 31): supervisord's command= is
# ROOT/shared/deploy run python app.py, with no -C. The process supervisord
# runs is the python app itself (deploy execs it), working in the real
# path of current's release, with that release's venv as sys.prefix, the
# envfile's variables and DEPLOY_REVISION. No release, an envfile that
# cannot be read: exit 2 and one line; a command not found: exit 127.
. "$(dirname "$0")/lib.sh"

make_app
# the app also writes its sys.prefix where PREFIX_OUT says
sed -i 's/^signal.signal(/open(os.environ["PREFIX_OUT"], "w").write(sys.prefix)\n&/' \
    "$APP/app.py"
A=$(new_commit v1-prefix)
RUN="$ROOT/shared/deploy"
{
	supervisord_head "$T/supervisor.sock" "$T"
	cat <<EOF
[program:app]
command=$RUN run python app.py
environment=APP_STATE="$APPSTATE",PREFIX_OUT="$T/prefix"
autostart=false
autorestart=false
startsecs=3
startretries=0
stopwaitsecs=5
redirect_stderr=true
stdout_logfile=$T/app.log
EOF
} >"$SVCONF"
supervisord -c "$SVCONF" || bail "supervisord did not start"
wait_for 15 sv_up || bail "supervisord not answering"
setup_root "envfile = app.env"
cp "$DEPLOY" "$RUN"
printf 'GREETING=hello from the envfile\n' >"$ROOT/shared/app.env"

run "$RUN" run python -c 'print(1)'
rc_is 2 "no release yet: exit 2"
like "$(err)" "*current*no release to run*" "no release yet: one line saying so"
sv start app >/dev/null 2>&1
is_fatal() { [ "$(app_state)" = FATAL ]; }
# startsecs=3: deploy run's exit 2 must come before startsecs for FATAL
# (exited too quickly); with 1 s, a loaded CI machine once took longer
# and supervisord showed EXITED
ok "supervisord shows the program FATAL" wait_for 15 is_fatal ||
	diag "app is $(app_state); supervisord: $(grep "app" "$T/supervisord.log" | tail -n 3)"
grep_ok "with deploy's line in the program's log" "$T/app.log" 'no release to run'

run_deploy deploy
rc_is 0 "deploy A, its program run by deploy run"
ok "the app runs from A's real path" app_runs_from "$A"
set -- $(app_status)
P=${2:-0}
is "$(cut -d' ' -f1 "$APPSTATE")" "$P" "supervisord's pid is the python app's own"
like "$(readlink "/proc/$P/exe")" "*python*" "that pid runs python"
is "$(readlink -f "$(cat "$T/prefix")")" \
    "$(readlink -f "$ROOT/releases/$A/.venv")" "sys.prefix is the release's venv"
envof() { tr '\0' '\n' <"/proc/$P/environ" | sed -n "s/^$1=//p"; }
is "$(envof GREETING)" "hello from the envfile" "the envfile's variable is set"
is "$(envof DEPLOY_REVISION)" "$A" "DEPLOY_REVISION is A"
is "$(envof DEPLOY_RELEASE)" "$ROOT/releases/$A" "DEPLOY_RELEASE is its real path"

# deploy's options end at run: -c and --help are the command's
run "$RUN" run -- python -c 'import os, sys; print(os.getcwd(), sys.prefix)' --help
rc_is 0 "run -- python -c ... --help: exit 0"
is "$(out)" "$ROOT/releases/$A $ROOT/releases/$A/.venv" \
    "the command's own -c and --help reach it, in the release, in its venv"

# deploy's own options before run: -C ROOT (any binary), -q
run "$DEPLOY" -q -C "$ROOT" run python -c 'import os; print(os.getcwd())'
rc_is 0 "deploy -q -C ROOT run python -c ...: exit 0"
is "$(out)" "$ROOT/releases/$A" "-C ROOT run: in current's release"

run "$RUN" run no-such-command-here
rc_is 127 "a command not found: exit 127"
like "$(err)" "*no-such-command-here*" "naming it"

chmod g+w "$ROOT/shared/app.env"
run "$RUN" run python -c 'print(1)'
rc_is 2 "an envfile deploy would not trust: exit 2"
like "$(err)" "*app.env*" "naming it"

done_testing
