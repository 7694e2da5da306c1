# lib.sh -- sourced by every test/*.t: TAP helpers and real fixtures.
#
# Each test gets its own temp dir $T holding:
#   $T/app          a git repo (the "remote") with a tiny Python app
#   $T/wheels       the wheel its requirements.txt names, built by mkwheel.py
#   $T/root         the deploy root ($ROOT)
#   $T/supervisord.conf and a real supervisord on $T/supervisor.sock
# Everything is removed on exit, supervisord stopped, and every process the
# test started (marked by DEPLOY_TEST_T=$T in its environment) killed by pid.
#
# The binary under test is $DEPLOY (default: ./deploy at the repo top).
# POSIX sh only: these run under dash.

set -u

TESTDIR=$(cd "$(dirname "$0")" && pwd -P)
TOP=$(dirname "$TESTDIR")
: "${DEPLOY:=$TOP/deploy}"
case $DEPLOY in
/*) ;;
*) DEPLOY=$(pwd -P)/$DEPLOY ;;
esac
# upper bound for one foreground deploy run, so a hung deploy fails the
# test instead of hanging the suite
: "${DEPLOY_TEST_LIMIT:=300}"

T=$(mktemp -d "${TMPDIR:-/tmp}/deploy-t.XXXXXX") || exit 1
T=$(cd "$T" && pwd -P)
ROOT=$T/root
APP=$T/app
REMOTE=$APP
SVCONF=$T/supervisord.conf
TESTRUNS=$T/testruns		# check_app.py appends a line per test run
APPSTATE=$T/appstate		# app.py writes "PID CWD VERSION DEPVERSION"

# Every process this test starts carries this, so cleanup finds them.
DEPLOY_TEST_T=$T
export DEPLOY_TEST_T
unset DEPLOY_ROOT DEPLOY_TEST_MARK || true

GIT_AUTHOR_NAME=deploy-test
GIT_AUTHOR_EMAIL=deploy-test@example.invalid
GIT_COMMITTER_NAME=$GIT_AUTHOR_NAME
GIT_COMMITTER_EMAIL=$GIT_AUTHOR_EMAIL
export GIT_AUTHOR_NAME GIT_AUTHOR_EMAIL GIT_COMMITTER_NAME GIT_COMMITTER_EMAIL

# pip never touches the network: only the wheels this test built.
PIP_NO_INDEX=1
PIP_FIND_LINKS=$T/wheels
PIP_DISABLE_PIP_VERSION_CHECK=1
PIP_NO_INPUT=1
export PIP_NO_INDEX PIP_FIND_LINKS PIP_DISABLE_PIP_VERSION_CHECK PIP_NO_INPUT

LC_ALL=C
export LC_ALL

# pip asks `rustc --version` for its user agent at every install; where
# rustup's proxy answers, that is 60 ms of CPU a pip run.  Nothing here
# uses Rust: cargo's folder leaves the tests' PATH.
_np=
_ifs=$IFS
IFS=:
for _d in $PATH; do
	case $_d in
	*/.cargo/bin) ;;
	*) _np=${_np:+$_np:}$_d ;;
	esac
done
IFS=$_ifs
PATH=$_np
export PATH

# Python keeps its bytecode, as on a server: where the machine sets
# PYTHONDONTWRITEBYTECODE, every pip run in a release's venv compiled pip
# again in memory, about half the run's CPU
unset PYTHONDONTWRITEBYTECODE || true

# DEPLOY_TEST_CACHE: a folder `make test` makes for one run of the suite and
# removes after it, where the fixtures many files share are built once (see
# "shared fixtures" below); unset, a file builds its own, as it always did
: "${DEPLOY_TEST_CACHE:=}"

# the python3 on PATH, resolved once (a run's files share the answer): a
# pyenv shim costs a second a call
PY=
if [ -n "$DEPLOY_TEST_CACHE" ] && [ -s "$DEPLOY_TEST_CACHE/python3" ]; then
	read -r PY <"$DEPLOY_TEST_CACHE/python3"
fi
if [ ! -x "${PY:-}" ]; then
	PY=$(python3 -c 'import sys; print(sys.executable)' 2>/dev/null)
	if [ -x "${PY:-}" ] && [ -n "$DEPLOY_TEST_CACHE" ]; then
		echo "$PY" >"$DEPLOY_TEST_CACHE/python3.$$" &&
			mv -f "$DEPLOY_TEST_CACHE/python3.$$" "$DEPLOY_TEST_CACHE/python3"
	fi
fi
[ -x "${PY:-}" ] || PY=python3

# ---------------------------------------------------------------- cleanup

# stop_supervisord: SIGTERM, which supervisord takes as `supervisorctl
# shutdown` (it stops its programs, then exits), without a Python start
stop_supervisord() {
	[ -f "$T/supervisord.pid" ] || return 0
	_svpid=
	read -r _svpid 2>/dev/null <"$T/supervisord.pid"
	[ -n "$_svpid" ] && kill -TERM "$_svpid" 2>/dev/null
	_i=0
	while [ -n "$_svpid" ] && alive "$_svpid" && [ $_i -lt 100 ]; do
		sleep 0.1
		_i=$((_i + 1))
	done
	if [ -n "$_svpid" ] && alive "$_svpid"; then
		kill -9 "$_svpid" 2>/dev/null
	fi
	rm -f "$T/supervisord.pid"
}

cleanup() {
	_status=$?
	set +e
	trap - EXIT HUP INT TERM
	stop_supervisord
	# whatever is left that this test started: background loops, servers,
	# processes a deploy leaked.  Killed one by one, by pid.
	for _p in $(pids_with_env DEPLOY_TEST_T "$T"); do
		[ "$_p" = $$ ] && continue
		kill -9 "$_p" 2>/dev/null
	done
	if [ -n "${KEEP_TMP:-}" ]; then
		echo "# kept $T" >&2
	else
		chmod -R u+rwX "$T" 2>/dev/null
		rm -rf "$T"
	fi
	exit $_status
}
trap cleanup EXIT
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------- TAP

_n=0
_nfail=0
_planned=

plan() {
	_planned=$1
	echo "1..$1"
}

diag() {
	printf '%s\n' "$*" | sed 's/^/# /' >&2
}

bail() {
	echo "Bail out! $*"
	exit 255
}

# _tap STATUS DESC
_tap() {
	_n=$((_n + 1))
	if [ "$1" -eq 0 ]; then
		echo "ok $_n - $2"
	else
		echo "not ok $_n - $2"
		_nfail=$((_nfail + 1))
	fi
}

# show_run: the last command run by run/run_deploy, for failure diagnosis
show_run() {
	[ -f "$T/cmd" ] || return 0
	diag "last command: $(cat "$T/cmd")"
	diag "exit status: ${rc:-?}"
	if [ -s "$T/out" ]; then
		diag "stdout:"
		sed 's/^/#   /' "$T/out" >&2
	fi
	if [ -s "$T/err" ]; then
		diag "stderr:"
		sed 's/^/#   /' "$T/err" >&2
	fi
}

pass() { _tap 0 "$1"; }
fail() { _tap 1 "$1"; show_run; }

# ok DESC CMD [ARGS...]: passes when CMD exits 0
ok() {
	_desc=$1
	shift
	if "$@"; then
		_tap 0 "$_desc"
	else
		_tap 1 "$_desc"
		diag "failed: $*"
		show_run
	fi
}

# is GOT EXPECTED DESC
is() {
	if [ "$1" = "$2" ]; then
		_tap 0 "$3"
	else
		_tap 1 "$3"
		diag "     got: '$1'"
		diag "expected: '$2'"
		show_run
	fi
}

# isnt GOT UNEXPECTED DESC
isnt() {
	if [ "$1" != "$2" ]; then
		_tap 0 "$3"
	else
		_tap 1 "$3"
		diag "got '$1', which it should not be"
		show_run
	fi
}

# like GOT GLOB DESC   (sh pattern matching, e.g. '*FAILED*')
like() {
	case $1 in
	$2) _tap 0 "$3" ;;
	*)
		_tap 1 "$3"
		diag "     got: '$1'"
		diag "expected to match: '$2'"
		show_run
		;;
	esac
}

unlike() {
	case $1 in
	$2)
		_tap 1 "$3"
		diag "     got: '$1'"
		diag "expected not to match: '$2'"
		show_run
		;;
	*) _tap 0 "$3" ;;
	esac
}

# grep_ok DESC FILE ERE: FILE has a line matching the extended regex ERE
grep_ok() {
	if grep -Eq -- "$3" "$2" 2>/dev/null; then
		_tap 0 "$1"
	else
		_tap 1 "$1"
		diag "no line of $2 matches: $3"
		show_run
	fi
}

grep_nok() {
	if grep -Eq -- "$3" "$2" 2>/dev/null; then
		_tap 1 "$1"
		diag "a line of $2 matches: $3"
		grep -E -- "$3" "$2" | sed 's/^/#   /' >&2
		show_run
	else
		_tap 0 "$1"
	fi
}

# rc_is EXPECTED DESC: status of the last run/run_deploy
rc_is() {
	is "${rc:-?}" "$1" "$2"
}

done_testing() {
	if [ -z "$_planned" ]; then
		echo "1..$_n"
	elif [ "$_planned" -ne "$_n" ]; then
		diag "planned $_planned tests but ran $_n"
	fi
	[ $_nfail -eq 0 ] && exit 0
	diag "$_nfail of $_n failed; temp dir $T (set KEEP_TMP=1 to keep it)"
	exit 1
}

# ---------------------------------------------------------------- running

# run CMD [ARGS...]: runs CMD with stdout in $T/out, stderr in $T/err,
# status in $rc.  Never fails itself.
run() {
	printf '%s\n' "$*" >"$T/cmd"
	"$@" >"$T/out" 2>"$T/err" </dev/null
	rc=$?
	{
		echo "\$ $*"
		cat "$T/out" "$T/err"
		echo "[exit $rc]"
	} >>"$T/transcript"
	return 0
}

# run_deploy ARGS...: the binary under test on $ROOT, bounded in time.
# It and everything it starts carry DEPLOY_TEST_MARK=$MARK.
MARK=main
run_deploy() {
	first_build "$@"
	DEPLOY_TEST_MARK=$MARK
	export DEPLOY_TEST_MARK
	run timeout -k 5 "$DEPLOY_TEST_LIMIT" "$DEPLOY" -C "$ROOT" "$@"
	unset DEPLOY_TEST_MARK
}

# bg_deploy MARK ARGS...: starts deploy in the background, its pid in
# $bgpid, output in $T/bg.out and $T/bg.err; bg_wait sets $bgrc
bg_deploy() {
	_m=$1
	shift
	first_build "$@"
	DEPLOY_TEST_MARK=$_m "$DEPLOY" -C "$ROOT" "$@" \
	    >"$T/bg.out" 2>"$T/bg.err" </dev/null &
	bgpid=$!
}

bg_wait() {
	wait "$bgpid" 2>/dev/null	# no "Killed" from the shell
	bgrc=$?
	{
		echo "\$ (background, pid $bgpid) deploy"
		cat "$T/bg.out" "$T/bg.err"
		echo "[exit $bgrc]"
	} >>"$T/transcript"
}

# show_bg: the background deploy's output, for diagnosis
show_bg() {
	diag "background deploy (pid ${bgpid:-?}) exit ${bgrc:-?}:"
	sed 's/^/#   /' "$T/bg.out" "$T/bg.err" >&2
}

out() { cat "$T/out"; }
err() { cat "$T/err"; }
# last non-empty line of stdout
last_line() { sed '/^[[:space:]]*$/d' "$T/out" | tail -n 1; }

# wait_for SECONDS CMD [ARGS...]: polls CMD every 0.1 s until it succeeds
wait_for() {
	_limit=$(($1 * 10))
	shift
	_i=0
	while ! "$@"; do
		_i=$((_i + 1))
		[ $_i -ge $_limit ] && return 1
		sleep 0.1
	done
	return 0
}

# now_ms: wall clock in milliseconds
now_ms() {
	_ns=$(date +%s%N)
	echo $((_ns / 1000000))
}

# random_below N: a random integer in [0, N)
random_below() {
	_r=$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')
	echo $((_r % $1))
}

# ---------------------------------------------------------------- processes

# alive PID: the process exists and is not a zombie
alive() {
	_st=
	[ -n "$1" ] && read -r _st 2>/dev/null <"/proc/$1/stat"
	_st=${_st##*) }		# the state follows the last ") " (comm may hold one)
	_st=${_st%% *}
	[ -n "$_st" ] && [ "$_st" != Z ]
}

# pids_with_env NAME VALUE: live processes whose environment has NAME=VALUE
pids_with_env() {
	grep -lzxF -- "$1=$2" /proc/[0-9]*/environ 2>/dev/null |
		sed -n 's,^/proc/\([0-9][0-9]*\)/environ$,\1,p' |
		while read -r _p; do
			alive "$_p" && echo "$_p"
		done
}

# marked_pids MARK: processes started (directly or not) by a deploy run
# with DEPLOY_TEST_MARK=MARK in its environment
marked_pids() {
	pids_with_env DEPLOY_TEST_MARK "$1"
}

# ps_of PIDS...: a readable line per process, for diagnostics
ps_of() {
	[ $# -gt 0 ] || return 0
	ps -o pid,ppid,pgid,stat,etime,args -p "$(echo "$@" | tr ' ' ,)" 2>/dev/null
}

# marked_gone MARK: waits up to 3 s for every process with that mark to
# end (a dying deploy's helpers may take a moment); fails if some remain
marked_gone() {
	_i=0
	while [ -n "$(marked_pids "$1")" ]; do
		[ $_i -ge 30 ] && return 1
		sleep 0.1
		_i=$((_i + 1))
	done
	return 0
}

# no_marked_procs DESC MARK: asserts nothing with that mark still runs,
# allowing 3 s for processes that are on their way out
no_marked_procs() {
	marked_gone "$2"
	_left=$(marked_pids "$2" | tr '\n' ' ')
	if [ -z "$_left" ]; then
		_tap 0 "$1"
	else
		_tap 1 "$1"
		diag "still running:"
		ps_of $_left | sed 's/^/#   /' >&2
	fi
}

# ---------------------------------------------------------------- shared fixtures

. "$TESTDIR/fixtures.sh"

# ---------------------------------------------------------------- git app

# The app: app.py (run by supervisord), check_app.py (its test suite),
# health.py (a health check), hang.sh (a test suite that never ends),
# VERSION and requirements.txt naming the wheel appdep==1.0, in a repo
# whose branch main has one commit, v1.  Under `make test` the repo is
# built once a run (this file is what it is built from) and copied.
make_app() {
	mkwheel "$T/wheels" appdep 1.0 >/dev/null || bail "mkwheel.py failed"
	if [ -n "$DEPLOY_TEST_CACHE" ]; then
		cached_app && cp -R -p "$CACHED/app" "$APP" || bail "copying the app failed"
		return 0
	fi
	_app_repo
}

# cached_app: CACHED names the run's cache entry of the app repo (in
# CACHED/app), built the first time
cached_app() {
	cached "app-$(hash_of -- "$TESTDIR/lib.sh")" _build_app
}

# _build_app DIR: the app repo in DIR/app, for the cache
_build_app() {
	_keep_app=$APP
	APP=$1/app
	_app_repo
	APP=$_keep_app
}

_app_repo() {
	git init -q "$APP" || bail "git init failed"
	git -C "$APP" symbolic-ref HEAD refs/heads/main
	cat >"$APP/app.py" <<'EOF'
"""The app supervisord runs: records its pid, cwd and version, then waits."""
import os
import signal
import sys
import time

if os.path.exists("CRASH"):
    sys.stderr.write("app: CRASH present, exiting at once\n")
    sys.exit(3)

import appdep  # installed by the release's pip step

version = open("VERSION").read().strip()
state = os.environ.get("APP_STATE")
if state:
    tmp = "%s.%d" % (state, os.getpid())
    with open(tmp, "w") as f:
        f.write("%d %s %s %s\n" % (os.getpid(), os.getcwd(), version,
                                    appdep.VERSION))
    os.rename(tmp, state)
signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
while True:
    time.sleep(1)
EOF
	cat >"$APP/check_app.py" <<'EOF'
"""The app's test suite.  usage: check_app.py [LOG [SECONDS]]

Appends one line per run to LOG (what deploy gave it), optionally runs a
child `sleep SECONDS` first (writing "PID CHILDPID" to LOG.started), and
fails when the release holds a file FAIL_TESTS.
"""
import os
import subprocess
import sys

import appdep  # fails unless pip installed requirements.txt

log = sys.argv[1] if len(sys.argv) > 1 else None
delay = sys.argv[2] if len(sys.argv) > 2 else None
env = os.environ.get
if log:
    with open(log, "a") as f:
        f.write("rev=%s cwd=%s release=%s root=%s venv=%s prefix=%s "
                "greeting=%s\n" % (env("DEPLOY_REVISION"), os.getcwd(),
                                   env("DEPLOY_RELEASE"), env("DEPLOY_ROOT"),
                                   env("VIRTUAL_ENV"), sys.prefix,
                                   env("GREETING", "")))
if delay:
    child = subprocess.Popen(["sleep", delay])
    if log:
        with open(log + ".started", "w") as f:
            f.write("%d %d\n" % (os.getpid(), child.pid))
    child.wait()
if os.path.exists("FAIL_TESTS"):
    print("check_app: FAIL: test_release (FAIL_TESTS is present)")
    sys.exit(1)
print("check_app: OK, all tests passed")
EOF
	cat >"$APP/health.py" <<'EOF'
"""Health check.  usage: health.py APPSTATE [LOG]

Passes when the app that supervisord runs is this release's: its state file
names this folder and this VERSION and its pid is alive.  Fails while the
release holds a file BAD_HEALTH.
"""
import os
import sys

if len(sys.argv) > 2:
    with open(sys.argv[2], "a") as f:
        f.write("rev=%s greeting=%s\n" % (os.environ.get("DEPLOY_REVISION"),
                                         os.environ.get("GREETING", "")))
if os.path.exists("BAD_HEALTH"):
    print("health: BAD_HEALTH is present")
    sys.exit(1)
version = open("VERSION").read().strip()
try:
    pid, cwd, v, dep = open(sys.argv[1]).read().split()
    os.kill(int(pid), 0)
except Exception as e:
    print("health: app not up: %s" % e)
    sys.exit(1)
if cwd != os.getcwd() or v != version:
    print("health: app runs %s %s, not %s %s" % (cwd, v, os.getcwd(), version))
    sys.exit(1)
print("health: ok")
EOF
	cat >"$APP/hang.sh" <<'EOF'
#!/bin/sh
# A test suite that never ends and has children, one deaf to SIGTERM.
# $1: file to write their pids to.
sh -c 'trap "" TERM; exec sleep 1000' &
echo $! >"$1"
sleep 1000 &
echo $! >>"$1"
echo $$ >>"$1"
wait
EOF
	chmod +x "$APP/hang.sh"
	echo "appdep==1.0" >"$APP/requirements.txt"
	new_commit v1 >/dev/null || bail "first commit failed"
}

# new_commit MSG: writes MSG to VERSION, commits every change in $APP,
# prints the new commit's full sha
new_commit() {
	printf '%s\n' "$1" >"$APP/VERSION"
	git -C "$APP" add -A &&
		git -C "$APP" commit -q -m "$1" &&
		git -C "$APP" rev-parse HEAD
}

# sha_of REF: full sha of a commit in the app repo
sha_of() {
	git -C "$APP" rev-parse --verify -q "$1^{commit}"
}

# ---------------------------------------------------------------- supervisord

sv() {
	supervisorctl -c "$SVCONF" "$@"
}

# free_port: a TCP port on 127.0.0.1 that nothing listens on now
free_port() {
	"$PY" -S -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# supervisord_head SOCKET DIR: the sections every supervisord of the tests
# has: its socket, and its pid file, log and child logs in DIR
supervisord_head() {
	mkdir -p "$2/svlogs"
	cat <<EOF
[unix_http_server]
file=$1

[supervisord]
pidfile=$2/supervisord.pid
logfile=$2/supervisord.log
childlogdir=$2/svlogs
nodaemon=false

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[supervisorctl]
serverurl=unix://$1

EOF
}

# app_program ROOT APPSTATE LOG: [program:app], the test app run from
# ROOT/current (its path quoted: a root may hold spaces)
app_program() {
	cat <<EOF
[program:app]
directory=$1/current
command="$1/current/.venv/bin/python" app.py
environment=APP_STATE="$2"
autostart=false
autorestart=true
startsecs=1
startretries=1
stopwaitsecs=5
stopasgroup=true
killasgroup=true
redirect_stderr=true
stdout_logfile=$3
EOF
}

start_supervisord() {
	{
		supervisord_head "$T/supervisor.sock" "$T"
		app_program "$ROOT" "$APPSTATE" "$T/app.log"
	} >"$SVCONF"
	supervisord -c "$SVCONF" || bail "supervisord did not start"
	wait_for 15 sv_up || bail "supervisord not answering on $T/supervisor.sock"
}

sv_up() {
	supervisord_up "$T/supervisor.sock" "$T/supervisord.pid"
}

# supervisord_up SOCKET PIDFILE: supervisord answers on SOCKET.  It listens
# there before it daemonizes and writes PIDFILE after, so a live pid in
# PIDFILE means a client's call is served, with no client started to ask.
supervisord_up() {
	[ -S "$1" ] && [ -s "$2" ] || return 1
	_upid=
	read -r _upid 2>/dev/null <"$2"
	[ -n "$_upid" ] && alive "$_upid"
}

# svctl ARGS...: test/svctl.py on this test's supervisord: state, status,
# start, stop, restart over the socket, without supervisorctl's start-up
# cost.  For looks and chores; a check about what an admin types runs sv.
svctl() {
	"$PY" -S "$TESTDIR/svctl.py" "$T/supervisor.sock" "$@"
}

# app_status: "STATE PID" of the app as supervisord sees it (PID 0 when
# none): the XML-RPC call supervisorctl status makes, at a third of the
# cost of starting supervisorctl
app_status() {
	svctl state app
}

# app_state: RUNNING, STOPPED, FATAL, BACKOFF, ...
app_state() {
	app_status | awk '{ print $1 }'
}

# app_pid: the app's pid, or nothing.  The app is supervisord's only
# child; asking /proc is much cheaper than a supervisorctl start-up, and
# app_runs_from still asks supervisord itself.
app_pid() {
	_sv=
	read -r _sv 2>/dev/null <"$T/supervisord.pid"
	[ -n "$_sv" ] || return 0
	_kids=
	if [ -r "/proc/$_sv/task/$_sv/children" ]; then
		read -r _kids <"/proc/$_sv/task/$_sv/children"
	else
		_kids=$(pgrep -P "$_sv")
	fi
	for _c in $_kids; do
		alive "$_c" && echo "$_c" && return 0
	done
	return 0
}

# app_cwd: the folder the running app works in, symlinks resolved
app_cwd() {
	_p=$(app_pid)
	[ -n "$_p" ] && readlink "/proc/$_p/cwd"
}

# app_runs_from SHA: the app is RUNNING, from releases/SHA; says what it
# saw when not
app_runs_from() {
	program_runs_from app "$1"
}

# program_runs_from NAME SHA: supervisord's process NAME is RUNNING, from
# releases/SHA; says what it saw when not
program_runs_from() {
	set -- "$1" "$2" $(svctl state "$1")
	_cwd=
	[ "${4:-0}" != 0 ] && _cwd=$(readlink "/proc/$4/cwd")
	[ "${3:-}" = RUNNING ] && [ "$_cwd" = "$ROOT/releases/$2" ] && return 0
	diag "$1 is ${3:-unknown} (pid ${4:-none}) in '$_cwd', not RUNNING in $ROOT/releases/$2"
	return 1
}

# ---------------------------------------------------------------- the root

# write_conf [LINE...]: writes shared/deploy.conf, mode 0644.  Each LINE is
# "key = value" and replaces the default for that key; "-key" drops it.
write_conf() {
	_conf=$ROOT/shared/deploy.conf
	{
		echo "# deploy.conf written by $(basename "$0")"
		for _kv in "repo = $REMOTE" \
		    "supervisorctl = supervisorctl -c $SVCONF" \
		    "program = app" \
		    "test = python check_app.py $TESTRUNS" \
		    "timeout = 120"; do
			_key=${_kv%% *}
			conf_overridden "$_key" "$@" || printf '%s\n' "$_kv"
		done
		for _kv; do
			case $_kv in
			-*) ;;
			*) printf '%s\n' "$_kv" ;;
			esac
		done
	} >"$_conf"
	chmod 0644 "$_conf"
}

conf_overridden() {
	_k=$1
	shift
	for _l; do
		case $_l in
		"$_k" | "$_k "* | "$_k="* | "-$_k") return 0 ;;
		esac
	done
	return 1
}

# setup_root [CONF LINE...]: app repo, supervisord, `deploy init`, config
setup_root() {
	[ -x "$DEPLOY" ] || bail "no deploy binary at $DEPLOY (run make)"
	[ -d "$APP" ] || make_app
	[ -f "$T/supervisord.pid" ] || start_supervisord
	mkdir -p "$ROOT"
	run_deploy init "$REMOTE"
	[ "$rc" -eq 0 ] || {
		show_run
		bail "deploy init failed"
	}
	write_conf "$@"
}

# current_link: what ROOT/current says, verbatim
current_link() {
	readlink "$ROOT/current" 2>/dev/null
}

# current_sha: the sha of the release current points to
current_sha() {
	_l=$(current_link)
	echo "${_l##*/}"
}

# releases: the entries of releases/, sorted, space-separated
releases() {
	ls -A "$ROOT/releases" 2>/dev/null | sort | tr '\n' ' ' | sed 's/ $//'
}

# tree_listing DIR: everything under DIR with type, mode, owner, size,
# mtime and link target -- what an admin would diff to see a change
tree_listing() {
	find "$1" -printf '%P %y %m %U %s %T@ %l\n' 2>/dev/null | sort
}

# testruns_of SHA: how many times the test step ran for SHA
testruns_of() {
	grep -c "^rev=$1 " "$TESTRUNS" 2>/dev/null || true
}

# list_line SHA: SHA's line from `deploy list`
list_line() {
	"$DEPLOY" -C "$ROOT" list 2>/dev/null | grep "^$1 "
}

# list_state SHA: its state column
list_state() {
	list_line "$1" | awk '{ print $2 }'
}

# list_mark SHA: its mark column (current, rollback or empty; list
# prints "-" for none)
list_mark() {
	list_line "$1" | awk '{ print ($5 == "-" ? "" : $5) }'
}

# real_dir PATH: a directory, not a symlink to one
real_dir() {
	[ -d "$1" ] && [ ! -L "$1" ]
}

# absent PATH: nothing there, not even a dangling symlink
absent() {
	[ ! -e "$1" ] && [ ! -L "$1" ]
}
