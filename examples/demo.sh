#!/bin/sh
# demo.sh [DIR]: deploy's main job end to end, on this machine only.
# demo.sh -c [DIR]: stop the demo's supervisord and remove DIR.
#
# In DIR (default ./demo): a git repository made from examples/app/, a
# deploy root, and a supervisord of its own on a unix socket, with the app
# defined autostart=false.  Then: deploy v1 and ask it over loopback,
# deploy v2, list and status, deploy a v3 whose tests fail (exit 1, v2
# still serves), roll back to v1.  One line per stage.  Re-runnable: each
# run starts from a clean DIR.  $DEPLOY is the binary (default ./deploy).
set -eu

HERE=$(cd "$(dirname "$0")" && pwd -P)
TOP=$(dirname "$HERE")
clean_only=
if [ "${1:-}" = -c ]; then
	clean_only=1
	shift
fi
DIR=${1:-demo}
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd -P)
: "${DEPLOY:=$TOP/deploy}"
SVCONF=$DIR/supervisord.conf
ROOT=$DIR/root
LOG=$DIR/demo.log

# stops the supervisord a previous run started (by its pidfile)
stop_supervisord() {
	[ -f "$DIR/supervisord.pid" ] || return 0
	pid=$(cat "$DIR/supervisord.pid")
	supervisorctl -c "$SVCONF" shutdown >/dev/null 2>&1 || true
	i=0
	while kill -0 "$pid" 2>/dev/null && [ $i -lt 100 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	kill -9 "$pid" 2>/dev/null || true
	rm -f "$DIR/supervisord.pid"
}

stop_supervisord
case $DIR in
/ | "$TOP" | "$HOME") echo "demo: refusing to remove $DIR" >&2; exit 2 ;;
esac
rm -rf "$DIR"
if [ -n "$clean_only" ]; then
	echo "demo: stopped its supervisord, removed $DIR"
	exit 0
fi
[ -x "$DEPLOY" ] || { echo "demo: no binary at $DEPLOY (run make)" >&2; exit 2; }
mkdir -p "$DIR"

say() { printf 'demo: %s\n' "$*"; }

# on an unexpected failure: what the last command printed, then exit 1
die() {
	say "FAILED: $*" >&2
	sed 's/^/    /' "$LOG" >&2
	exit 1
}

# quiet git: only what this script asks for
GIT_AUTHOR_NAME=demo GIT_AUTHOR_EMAIL=demo@example.invalid
GIT_COMMITTER_NAME=demo GIT_COMMITTER_EMAIL=demo@example.invalid
export GIT_AUTHOR_NAME GIT_AUTHOR_EMAIL GIT_COMMITTER_NAME GIT_COMMITTER_EMAIL
# pip never reaches out: the app needs nothing from an index
PIP_NO_INDEX=1 PIP_DISABLE_PIP_VERSION_CHECK=1
export PIP_NO_INDEX PIP_DISABLE_PIP_VERSION_CHECK

commit() {
	git -C "$DIR/app" add -A >"$LOG" 2>&1 &&
	    git -C "$DIR/app" commit -qm "$1" >>"$LOG" 2>&1 ||
	    die "git commit"
	git -C "$DIR/app" rev-parse HEAD
}

# the app's answer over loopback
get() {
	curl -fsS --max-time 5 "$URL" 2>&1 || true
}

deploy() {
	"$DEPLOY" -C "$ROOT" "$@" >"$LOG" 2>&1
}

# 1. the app's repository
mkdir "$DIR/app"
cp "$TOP"/examples/app/*.py "$TOP/examples/app/VERSION" \
    "$TOP/examples/app/requirements.txt" "$DIR/app/"
git init -q "$DIR/app" && git -C "$DIR/app" symbolic-ref HEAD refs/heads/main ||
    die "git init"
V1=$(commit "v1")
say "made a git repository in $DIR/app from examples/app/ (v1 ${V1%"${V1#???????}"})"

# 2. supervisord with the program, autostart=false: nothing to run yet
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
URL=http://127.0.0.1:$PORT/
cat >"$SVCONF" <<EOF
[unix_http_server]
file=$DIR/supervisor.sock

[supervisord]
pidfile=$DIR/supervisord.pid
logfile=$DIR/supervisord.log
childlogdir=$DIR
nodaemon=false

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[supervisorctl]
serverurl=unix://$DIR/supervisor.sock

[program:demoapp]
command=$ROOT/current/.venv/bin/python app.py $PORT
directory=$ROOT/current
environment=PWD="$ROOT/current"
autostart=false
autorestart=true
startsecs=1
stopasgroup=true
killasgroup=true
redirect_stderr=true
stdout_logfile=$DIR/app.log
EOF
supervisord -c "$SVCONF" >"$LOG" 2>&1 || die "supervisord"
i=0
until supervisorctl -c "$SVCONF" status demoapp >/dev/null 2>&1 ||
    [ $? -eq 3 ]; do
	i=$((i + 1))
	[ $i -lt 100 ] || die "supervisord does not answer on $DIR/supervisor.sock"
	sleep 0.1
done
say "started supervisord on $DIR/supervisor.sock; program demoapp is STOPPED"

# 3. the root and its config
deploy init "$DIR/app" main || die "deploy init"
cat >"$ROOT/shared/deploy.conf" <<EOF
repo = $DIR/app
branch = main
test = python -m unittest -q
program = demoapp
supervisorctl = supervisorctl -c $SVCONF
check = curl -fsS --max-time 5 $URL
check_timeout = 20
EOF
chmod 644 "$ROOT/shared/deploy.conf"
deploy -n || die "deploy -n"
say "made the deploy root $ROOT; deploy -n finds nothing missing"

# 4. v1
deploy deploy || die "deploy of v1"
say "deployed v1: current -> $(readlink "$ROOT/current"); $URL says: $(get)"

# 5. v2
echo 2 >"$DIR/app/VERSION"
V2=$(commit "v2")
deploy deploy || die "deploy of v2"
say "deployed v2: current -> $(readlink "$ROOT/current"); $URL says: $(get)"
say "deploy list:"
deploy list || die "deploy list"
sed 's/^/    /' "$LOG"
say "deploy status:"
deploy status || die "deploy status"
sed 's/^/    /' "$LOG"

# 6. v3, whose tests fail: nothing changes
echo 3 >"$DIR/app/VERSION"
sed 's/"hello from v%s"/"helo from v%s"/' "$DIR/app/app.py" >"$DIR/app.py.new"
mv "$DIR/app.py.new" "$DIR/app/app.py"
V3=$(commit "v3: a typo the tests catch")
rc=0
deploy deploy || rc=$?
[ $rc -eq 1 ] || die "deploy of v3 exited $rc, not 1"
step=$(grep -m 1 'FAILED' "$LOG" || true)
say "deploy of v3 (${V3%"${V3#???????}"}) failed its tests (exit 1: $step); current -> $(readlink "$ROOT/current"); $URL still says: $(get)"

# 7. rollback
deploy rollback || die "deploy rollback"
say "rolled back: current -> $(readlink "$ROOT/current"); $URL says: $(get)"
say "done; the app still runs: make demo-clean stops it and removes $DIR"
