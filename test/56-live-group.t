#!/bin/sh
# A group after a reboot (issue 30, items 6 and 7), with a real supervisord:
#   6. convergence that starts a stopped group names every process it
#      started, not one;
#   7. the README's autostart advice: autostart=true written into the file
#      and `supervisorctl reread` restart nothing (same pids), and the
#      next start of supervisord (a reboot) starts current by itself.
. "$(dirname "$0")/lib.sh"

# gconf AUTOSTART: supervisord.conf with the group web of two processes
gconf() {
	supervisord_head "$T/supervisor.sock" "$T"
	cat <<EOF
[program:web]
process_name=%(program_name)s_%(process_num)02d
numprocs=2
directory=$ROOT/current
command="$ROOT/current/.venv/bin/python" app.py
autostart=$1
autorestart=true
startsecs=1
startretries=1
stopwaitsecs=5
stopasgroup=true
killasgroup=true
redirect_stderr=true
EOF
}
pids() { svctl status 'web:*' | awk '{ print $4 }' | tr -d , | tr '\n' ' '; }

make_app
gconf false >"$SVCONF"
supervisord -c "$SVCONF" || bail "supervisord did not start"
wait_for 15 sv_up || bail "supervisord not answering"
setup_root "program = web:*"
A=$(sha_of HEAD)
run_deploy deploy
rc_is 0 "the group deploys"

# ---- 6. both processes stopped: the cron run starts both, says so
sv stop 'web:*' >/dev/null
run_deploy -q deploy
rc_is 0 "the cron run with nothing new restarts the stopped group: exit 0"
like "$(out)" "process web:web_00 was STOPPED, process web:web_01 was STOPPED: started ${A%"${A#????????????}"} and checked" \
    "its one line names both processes it started"
like "$(sv status 'web:*')" "*web_00*RUNNING*web_01*RUNNING*" "both run"

# ---- 7. autostart=true without restarting the running group
before=$(pids)
gconf true >"$SVCONF"
out=$(sv reread 2>&1)
like "$out" "*web: changed*" "supervisorctl reread sees the change"
is "$(pids)" "$before" "reread alone restarts nothing (same pids)"
like "$(sv status 'web:*')" "*web_00*RUNNING*web_01*RUNNING*" "both still run"
# the reboot: supervisord stops and starts again, reading the file
stop_supervisord
supervisord -c "$SVCONF" || bail "supervisord did not start again"
wait_for 15 sv_up || bail "supervisord not answering"
wait_for 15 eval 'svctl status "web:*" | grep -c RUNNING | grep -qx 2'
like "$(sv status 'web:*')" "*web_00*RUNNING*web_01*RUNNING*" \
    "after the next start of supervisord both run, started by it alone"
is "$(readlink "/proc/$(pids | awk '{ print $1 }')/cwd")" "$ROOT/releases/$A" \
    "from current's release"
done_testing
