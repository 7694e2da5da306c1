#!/bin/sh
# Issue 33, "no race with supervisord's own restarts": a switch back never
# waits out a full stopwaitsecs on a process that is only starting.  In
# release B the worker (startsecs=6, stopwaitsecs=300) is confirmed
# RUNNING, then dies during the check and supervisord starts it again;
# the new B worker ignores SIGTERM while it starts and has a child.  The
# check passes, but the worker is not the one confirmed: switched back,
# and the B worker, still STARTING, must be killed with its process group
# rather than stopped.  Stopped as usual, the stop outlasts `timeout` and
# the run ends in exit 5 with the worker still on B.
. "$(dirname "$0")/lib.sh"

plan 22

make_app
cat >"$APP/worker.py" <<'EOF'
"""The test's worker: idles until SIGTERM, exits 1 on SIGUSR1 (as if it
crashed), its pid in $WORKER_DIR/worker.pid; in a release holding INTO it
crashes once current names another release.  Started again after such a
crash ($WORKER_DIR/killed) in a release holding DEAF, it starts a child,
writes "PID CHILDPID" to $WORKER_DIR/deaf and ignores SIGTERM while it
"starts" (for ever)."""
import os
import signal
import subprocess
import sys
import time

d = os.environ["WORKER_DIR"]
if os.path.exists("DEAF") and os.path.exists(os.path.join(d, "killed")):
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    child = subprocess.Popen(["sleep", "1000"])
    with open(os.path.join(d, "deaf"), "w") as f:
        f.write("%d %d\n" % (os.getpid(), child.pid))
    while True:
        time.sleep(1)
if os.path.exists("DEAFRUN"):
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # up, and deaf to a stop
else:
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
signal.signal(signal.SIGUSR1, lambda *a: os._exit(1))
with open(os.path.join(d, "worker.pid"), "w") as f:
    f.write("%d\n" % os.getpid())
here = os.getcwd()
into = os.path.exists("INTO")
while True:
    time.sleep(0.05 if into else 1)
    if into and os.path.realpath("../../current") != here:
        os._exit(1)  # in a release holding INTO: crash once it is not current
EOF
cat >"$APP/check.py" <<'EOF'
"""The check: fails in a release holding INTO; passes otherwise, and in
a release holding DEAF first makes the worker crash (SIGUSR1), so that
supervisord starts it again."""
import os
import signal
import sys
import time

d = sys.argv[1]
if os.path.exists("INTO"):
    print("check: INTO fails")
    sys.exit(1)
if os.path.exists("DEAF"):
    open(os.path.join(d, "killed"), "w").close()
    os.kill(int(open(os.path.join(d, "worker.pid")).read()), signal.SIGUSR1)
    time.sleep(2.5)  # supervisord starts it again after about a second
print("check: ok")
EOF
A=$(new_commit "worker") || bail "commit failed"

{
	supervisord_head "$T/supervisor.sock" "$T"
	cat <<EOF
[program:worker]
directory=$ROOT/current
command="$ROOT/current/.venv/bin/python" worker.py
environment=WORKER_DIR="$T"
autostart=false
autorestart=true
startsecs=6
startretries=3
stopwaitsecs=300
stopasgroup=true
killasgroup=true
stdout_logfile=$T/worker.log
stderr_logfile=$T/worker.err
EOF
	app_program "$ROOT" "$APPSTATE" "$T/app.log"
} >"$SVCONF"
supervisord -c "$SVCONF" || bail "supervisord did not start"
wait_for 15 sv_up || bail "supervisord not answering"
setup_root "program = worker" "check = python check.py $T" "timeout = 30"

run_deploy
rc_is 0 "A deploys: its worker comes up after startsecs, the check passes"
ok "the worker runs A" program_runs_from worker "$A"

touch "$APP/DEAF"
B=$(new_commit "deaf while it starts again") || bail "commit failed"
run_deploy
rc_is 4 "B's worker died after it was confirmed: switched back, exit 4"
ok "the check made B's worker crash, and supervisord started it again" \
    test -s "$T/deaf"
like "$(err)" "*program worker restarted or stopped after it was confirmed RUNNING*" \
    "the failure says the worker did not stay up"
is "$(current_sha)" "$A" "current is A again"
ok "the worker runs A again" program_runs_from worker "$A"

read -r deafpid deafchild <"$T/deaf" 2>/dev/null || deafpid=
gone() { ! alive "$1"; }
ok "B's second worker, deaf to SIGTERM while it starts, is gone" \
    wait_for 5 gone "${deafpid:-1}"
ok "its child is gone too: the process group was killed" \
    wait_for 5 gone "${deafchild:-1}"
grep_ok "the switch back's log says it killed the starting worker" \
    "$ROOT/.deploy/logs/$A.log" "worker is only STARTING, in the release that failed: killing it"
grep_ok "supervisord saw it killed at once, not after stopwaitsecs" \
    "$T/supervisord.log" ": worker \\(terminated by SIGKILL"
grep_ok "the audit line names the program that failed" "$ROOT/.deploy/audit" \
    '"program worker failed: program worker restarted or stopped'
run_deploy status
like "$(out)" "*program: worker RUNNING pid * (releases/$A, current)*" \
    "status names the worker, running A"
rc_is 0 "status: exit 0 (every program runs current)"

# ---- the other side: a worker that supervisord is starting again, from
# the release the switch back returns to, is watched, not stopped.  With
# program = app worker, C's check fails; C's worker crashes as soon as
# current is A again, and supervisord starts it from A while the switch
# back restarts app (over two seconds).
rm -f "$APP/DEAF"
touch "$APP/INTO"
C=$(new_commit "the worker crashes as the check ends") || bail "commit failed"
write_conf "program = app worker" "check = python check.py $T" \
    "check_timeout = 1" "timeout = 30"
run_deploy
rc_is 4 "C's check fails: switched back, exit 4"
is "$(current_sha)" "$A" "current is A again"
ok "the worker runs A" program_runs_from worker "$A"
A12=$(printf %.12s "$A")
grep_ok "the switch back found the worker STARTING from A and left it to start" \
    "$ROOT/.deploy/logs/$A.log" "worker is STARTING in $A12 already \\(supervisord's own restart\\): not stopping it"
spawns=$(awk '/exited: worker \(exit status 1; not expected\)/ { n = 0 }
    /spawned: .worker./ { n++ } END { print n }' "$T/supervisord.log")
is "$spawns" 1 "after the crash the worker was started once, by supervisord: deploy did not stop and start it again"

# ---- a stop that outlasts `timeout`: D's worker runs deaf to SIGTERM
# (stopwaitsecs=300); E's deploy gives up on stopping it after `timeout`
# seconds, says so, and so does the switch back to D: exit 5
rm -f "$APP/INTO"
touch "$APP/DEAFRUN"
D=$(new_commit "a worker deaf to its stop") || bail "commit failed"
write_conf "program = worker" "check = python check.py $T" "timeout = 30"
run_deploy
rc_is 0 "D deploys (its worker ignores SIGTERM)"
rm -f "$APP/DEAFRUN"
E=$(new_commit "after the deaf one") || bail "commit failed"
write_conf "program = worker" "check = python check.py $T" "timeout = 8"
run_deploy
rc_is 5 "E cannot stop D's worker within timeout, nor can the switch back: exit 5"
like "$(err)" "*supervisord could not stop worker within 8s (timeout)*" \
    "it says which program would not stop, and after how long"

done_testing
