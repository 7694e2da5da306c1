#!/bin/sh
# Issue 33: the whole app moves.  docs/zero-downtime.md's recipes, as
# written: an ASGI app under Debian's uvicorn (--fd 0) as an
# [fcgi-program] group of two, and a worker program beside it that takes
# jobs from a folder (claim by rename, finish the job it holds on
# SIGTERM), with program = web:* worker.  Jobs keep arriving and HTTP
# clients keep asking through three deploys and a release whose worker
# cannot import: no request fails, no job is lost or done twice, the
# worker runs each new release, and the broken one is switched back
# whole.  Then a reboot (everything stopped) is mended by a cron run.
. "$(dirname "$0")/lib.sh"

PYSYS=/usr/bin/python3
"$PYSYS" -c 'import uvicorn' 2>/dev/null ||
	{ echo "1..0 # SKIP no uvicorn for $PYSYS (Debian: python3-uvicorn)"; exit 0; }

plan 40

# recipe NAME: the block NAME of docs/zero-downtime.md, with this test's
# root and port
recipe() {
	sed -n "/^<!-- recipe:$1 -->\$/,/^<!-- \\/recipe:$1 -->\$/p" \
	    "$TOP/docs/zero-downtime.md" | sed '/^<!--/d; s/^    //' |
	    sed "s,/var/www/example,$ROOT,g; s,127\\.0\\.0\\.1:8000,127.0.0.1:$PORT,g"
}

PORT=$(free_port)
URL=http://127.0.0.1:$PORT
JOBS=$ROOT/shared/jobs

mkdir -p "$APP"
git init -q "$APP" && git -C "$APP" symbolic-ref HEAD refs/heads/main
cat >"$APP/app.py" <<'EOF'
"""The test's ASGI app: VERSION at /, the release's sha at /health."""
import os

VERSION = open("VERSION").read().strip()
REVISION = os.path.basename(os.getcwd())


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    body = REVISION if scope["path"] == "/health" else VERSION
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": body.encode() + b"\n"})
EOF
cat >"$APP/worker.py" <<'EOF'
"""The test's worker: takes jobs from shared/jobs/in by renaming them
into claimed/, works 150 ms (busy more than half the time, so a
stop often finds it in a job), writes done/JOB ("SHA PID"; dup/JOB if
done/JOB exists), and on SIGTERM finishes the job it holds, then exits."""
import os
import signal
import sys
import time

import tasks  # a release whose worker cannot import breaks here

stop = False


def term(*_):
    global stop
    stop = True


signal.signal(signal.SIGTERM, term)
jobs = os.path.join(os.getcwd(), "..", "..", "shared", "jobs")
rev = os.path.basename(os.getcwd())
while not stop:
    names = sorted(os.listdir(os.path.join(jobs, "in")))
    for n in names:
        c = os.path.join(jobs, "claimed", n)
        try:
            os.rename(os.path.join(jobs, "in", n), c)
        except FileNotFoundError:
            continue
        time.sleep(0.15)
        try:
            fd = os.open(os.path.join(jobs, "done", n),
                         os.O_WRONLY | os.O_CREAT | os.O_EXCL)
        except FileExistsError:
            fd = os.open(os.path.join(jobs, "dup", n),
                         os.O_WRONLY | os.O_CREAT)
        os.write(fd, ("%s %d\n" % (rev, os.getpid())).encode())
        os.close(fd)
        os.unlink(c)
        break
    else:
        time.sleep(0.05)
sys.exit(0)
EOF
echo 'OK = True' >"$APP/tasks.py"
recipe check >"$APP/check_revision.py"
grep -q DEPLOY_REVISION "$APP/check_revision.py" ||
	bail "no recipe:check in docs/zero-downtime.md"
new_commit v1 >/dev/null || bail "commit failed"
V1=$(sha_of HEAD)

mkdir -p "$ROOT"
{
	supervisord_head "$T/supervisor.sock" "$T"
	# startsecs 1, not the recipe's 3: this app imports in no time, and
	# the test restarts the group six times
	recipe asgi | sed 's/^startsecs=3$/startsecs=1/'
	echo "autostart=false"
	echo
	recipe worker
} >"$SVCONF"
grep -q '^\[fcgi-program:web\]' "$SVCONF" || bail "no recipe:asgi"
grep -q 'uvicorn --fd 0' "$SVCONF" || bail "recipe:asgi runs no uvicorn --fd 0"
grep -q '^startsecs=1$' "$SVCONF" || bail "no startsecs=3 in recipe:asgi"
grep -q '^\[program:worker\]' "$SVCONF" || bail "no recipe:worker"
supervisord -c "$SVCONF" || bail "supervisord did not start"
wait_for 15 sv_up || bail "supervisord not answering"

run_deploy init "$REMOTE"
[ "$rc" -eq 0 ] || { show_run; bail "deploy init failed"; }
mkdir -p "$JOBS/in" "$JOBS/claimed" "$JOBS/done" "$JOBS/dup" "$JOBS/new"
# conf [PROGRAM LINE]: deploy.conf with recipe:whole's lines
conf() {
	write_conf -test \
	    "virtualenv = virtualenv --system-site-packages -p $PYSYS" \
	    "${1:-$(recipe whole | grep '^program')}" \
	    "$(recipe whole | grep '^check')" "notify = $T/notify.sh"
}
printf '#!/bin/sh\necho "$DEPLOY_STATUS $DEPLOY_DETAIL" >>"%s"\n' "$T/notified" \
    >"$T/notify.sh"
chmod +x "$T/notify.sh"
conf
grep_ok "the recipe's program line is a list" "$ROOT/shared/deploy.conf" \
    '^program = web:\* worker$'

# pid_of NAME: the pid supervisord gives process NAME (0 when none)
pid_of() {
	"$PY" -S "$TESTDIR/svstate.py" "$T/supervisor.sock" "$1" | awk '{ print $2 }'
}

# all_on SHA: web_00, web_01 and worker RUNNING, each in releases/SHA
all_on() {
	for _pn in web:web_00 web:web_01 worker; do
		_st=$("$PY" -S "$TESTDIR/svstate.py" "$T/supervisor.sock" "$_pn")
		_pid=${_st#* }
		_cwd=
		[ "$_pid" != 0 ] && _cwd=$(readlink "/proc/$_pid/cwd")
		if [ "${_st%% *}" != RUNNING ] || [ "$_cwd" != "$ROOT/releases/$1" ]; then
			diag "$_pn is $_st in '$_cwd', not $1"
			return 1
		fi
	done
}

# the producer: a job every 250 ms into jobs/in, numbered, until jobs/stop
"$PY" -c '
import os, sys, time
d = sys.argv[1]
i = 0
while not os.path.exists(os.path.join(d, "stop")):
    i += 1
    n = "job-%06d" % i
    with open(os.path.join(d, "new", n), "w") as f:
        f.write(n)
    os.rename(os.path.join(d, "new", n), os.path.join(d, "in", n))
    time.sleep(0.25)
with open(os.path.join(d, "made"), "w") as f:
    f.write("%d\n" % i)
' "$JOBS" &
PRODUCER=$!

# under_load ARGS...: deploy ARGS with load.py's clients running through
under_load() {
	rm -f "$T/load" "$T/load.ready" "$T/load.stop"
	"$PY" "$TESTDIR/load.py" "$URL/" "$T/load.stop" "$T/load" 2 100 100000 25 &
	_lpid=$!
	wait_for 10 test -e "$T/load.ready" || diag "the clients got no answer"
	run_deploy "$@"
	: >"$T/load.stop"
	wait "$_lpid"
	LOAD=$(head -n 1 "$T/load" 2>/dev/null)
	diag "$*: exit $rc; $LOAD"
}

# done_by SHA: jobs done by a worker in release SHA
done_by() {
	cat "$JOBS"/done/* 2>/dev/null | grep -c "^$1 " || true
}

# 1. the first deploy starts everything
run_deploy deploy
rc_is 0 "first deploy of web:* and worker"
ok "web_00, web_01 and worker run v1" all_on "$V1"
is "$(curl -fsS --max-time 5 "$URL/health")" "$V1" "uvicorn answers on the socket"

# 2. three deploys under load, jobs arriving
for v in v2 v3 v4; do
	S=$(new_commit "$v")
	under_load deploy
	rc_is 0 "deploy $v"
	like "$LOAD" "ok=[1-9]* failed=0 *" "deploy $v: no failed request"
	ok "deploy $v: every process runs it, the worker too" all_on "$S"
	wait_for 10 test "$(done_by "$S")" -gt 0
	ok "deploy $v: the worker takes jobs in the new release" \
	    test "$(done_by "$S")" -gt 0
done
V4=$S
grep_ok "the worker was restarted after the web group" \
    "$ROOT/.deploy/logs/$V4.log" '^restarting worker$'
_order=$(sed -n 's/^restarting \(web:web_0[01]\|worker\)$/\1/p' \
    "$ROOT/.deploy/logs/$V4.log" | tr '\n' ' ')
is "$_order" "web:web_00 web:web_01 worker " "in program's order"
is "$(grep -c '^\[[0-9]*\] check ok' "$T/out")" 1 "check ran once"

# 3. a release whose worker cannot import: exit 4, all back on v4
printf 'raise ImportError("tasks: the broker settings are missing")\n' \
    >"$APP/tasks.py"
V5=$(new_commit v5)
under_load deploy
rc_is 4 "a worker that cannot import: exit 4"
like "$LOAD" "ok=[1-9]* failed=0 *" "no failed request through the switch back"
ok "every program is back on v4" all_on "$V4"
is "$(current_sha)" "$V4" "current is v4"
like "$(err)" "*worker is *, not RUNNING*" "deploy says the worker failed"
like "$(err)" "*ImportError: tasks: the broker settings are missing*" \
    "the worker's traceback is shown"
like "$(err)" "*Traceback*" "... as a traceback"
is "$(list_state "$V5")" failed "v5 is listed failed"
like "$(tail -n 1 "$T/notified")" "4 program worker failed: worker is *, not RUNNING*" \
    "notify is told the worker failed"
like "$(tail -n 1 "$ROOT/.deploy/audit")" '*"detail": "program worker failed: *' \
    "so is the audit"
git -C "$APP" reset -q --hard "$V4"	# the remote back at current

# 4. status lists every process of every program
run_deploy status
like "$(out)" "*program: web:web_00 RUNNING*program: web:web_01 RUNNING*program: worker RUNNING*" \
    "status lists web_00, web_01 and the worker"
run_deploy status --json
like "$(out)" '*"processes": \[{"name": "web:web_00"*"name": "web:web_01"*"name": "worker", "state": "RUNNING"*' \
    "status --json lists every process"

# 5. a reboot: everything stopped; the next cron run starts every program
sv stop all >/dev/null 2>&1
run_deploy -q deploy
rc_is 0 "a cron run after a reboot"
ok "it started every program on v4" all_on "$V4"
like "$(out)" "*started ${V4%"${V4#????????????}"} and checked*" "and said so"

# 6. -n: every entry known; a typo gets a did-you-mean
conf "program = web:* wroker"
new_commit v6 >/dev/null
run_deploy -n deploy
isnt "$rc" 0 "-n with a misspelled worker fails"
like "$(out)$(err)" "*wroker*did you mean worker*" "... with a did-you-mean"
conf

# 7. no job lost or done twice
: >"$JOBS/stop"
wait "$PRODUCER"
wait_for 60 sh -c '[ -z "$(ls -A "$1/in" "$1/claimed")" ]' sh "$JOBS"
MADE=$(cat "$JOBS/made")
is "$(ls "$JOBS/done" | wc -l)" "$MADE" "all $MADE jobs done"
is "$(ls "$JOBS/claimed" | wc -l)" 0 "no job left claimed (lost)"
is "$(ls "$JOBS/dup" | wc -l)" 0 "no job done twice"
ok "the broken v5 did no job" test "$(done_by "$V5")" -eq 0

done_testing
