#!/bin/sh
# Issue 21: the front door.  A real nginx runs examples/nginx.conf as
# written (a loopback port, this root, this app's port swapped in) in
# front of docs/zero-downtime.md's recipe: an [fcgi-program] group of two
# gunicorn processes under supervisord, restarted one at a time.  The app is a
# Django app whose page names its stylesheet through
# ManifestStaticFilesStorage (collectstatic in build, into the release).
# Two clients (test/pageload.py) load a page, then the asset it names,
# through nginx during two deploys, a rollback and a release that fails
# its check (switched back): no page and no asset fails, and each asset
# is the page's own release's.  Also: what previous names after each,
# prune keeps it, and nothing is served that the pair does not hold.
. "$(dirname "$0")/lib.sh"

PYSYS=/usr/bin/python3
"$PYSYS" -c 'import gunicorn, django' 2>/dev/null ||
	{ echo "1..0 # SKIP no gunicorn or django for $PYSYS"; exit 0; }
command -v nginx >/dev/null 2>&1 ||
	{ echo "1..0 # SKIP no nginx (scripts/prereqs installs nginx-light)"; exit 0; }

plan 48

# recipe NAME: the block <!-- recipe:NAME --> of docs/zero-downtime.md or
# docs/front-door.md, unindented, with their root and port replaced by
# this test's (as in 50)
recipe() {
	sed -n "/^<!-- recipe:$1 -->\$/,/^<!-- \\/recipe:$1 -->\$/p" \
	    "$TOP/docs/zero-downtime.md" "$TOP/docs/front-door.md" | sed '/^<!--/d; s/^    //' |
	    sed "s,/var/www/example,$ROOT,g; s,127\\.0\\.0\\.1:8000,127.0.0.1:$PORT,g"
}

PORT=$(free_port)
NPORT=$(free_port)
URL=http://127.0.0.1:$NPORT

# ---- the app: Django, one file; its page names app.css as collectstatic
# fingerprinted it, /health answers the release folder's name (or "bad"
# in a release holding BAD_HEALTH)
mkdir -p "$APP/assets"
git init -q "$APP" && git -C "$APP" symbolic-ref HEAD refs/heads/main
cp "$TESTDIR/frontapp.py" "$APP/app.py" || bail "no test/frontapp.py"
cat >"$APP/manage.py" <<'EOF'
import sys

import app  # noqa: F401 (configures Django)
from django.core.management import execute_from_command_line

execute_from_command_line(sys.argv)
EOF
recipe check >"$APP/check_revision.py"
grep -q DEPLOY_REVISION "$APP/check_revision.py" || bail "no recipe:check in docs/zero-downtime.md"

# commit_v VERSION: a commit whose stylesheet holds VERSION; prints its sha
commit_v() {
	printf '/* %s */\nbody { color: #222; }\n' "$1" >"$APP/assets/app.css"
	new_commit "$1"
}
V1=$(commit_v v1) || bail "commit failed"

# ---- supervisord with docs/zero-downtime.md's group, as in 50
mkdir -p "$ROOT"
{
	supervisord_head "$T/supervisor.sock" "$T"
	# startsecs 1, not 3: the roll is the same, in half the time
	recipe fcgi | sed 's/^startsecs=3$/startsecs=1/'
	echo "autostart=false"
	echo "redirect_stderr=true"
	echo "stdout_logfile=$T/web.log"
} >"$SVCONF"
grep -q '^\[fcgi-program:web\]' "$SVCONF" || bail "no recipe:fcgi in docs/zero-downtime.md"
supervisord -c "$SVCONF" || bail "supervisord did not start"
wait_for 15 sv_up || bail "supervisord not answering"

run_deploy init "$REMOTE"
[ "$rc" -eq 0 ] || { show_run; bail "deploy init failed"; }
# the recipe's command= is ROOT/shared/deploy run ...
cp "$DEPLOY" "$ROOT/shared/deploy" || bail "cannot copy the binary"
# the docs' deploy.conf lines, as written
write_conf -test \
    "virtualenv = virtualenv --system-site-packages -p $PYSYS" \
    "$(recipe conf | grep '^program')" \
    "$(recipe conf | grep '^check')" \
    "$(recipe static | grep '^build')" "check_timeout = 20"
grep_ok "docs/front-door.md's build line runs collectstatic" \
    "$ROOT/shared/deploy.conf" '^build = python manage.py collectstatic --noinput$'

# ---- nginx: examples/nginx.conf as written, inside a main config of
# the test's own (its pid, logs and temp files under $T/nginx)
N=$T/nginx
mkdir -p "$N/tmp"
sed -e "s|listen 80;|listen 127.0.0.1:$NPORT;|" \
    -e "s|/var/www/example|$ROOT|g" \
    -e "s|127\\.0\\.0\\.1:8000|127.0.0.1:$PORT|g" \
    "$TOP/examples/nginx.conf" >"$N/example.conf"
grep -q "listen 127.0.0.1:$NPORT;" "$N/example.conf" ||
	bail "examples/nginx.conf has no 'listen 80;'"
{
	# workers read the root: as root they run as root, else as us
	[ "$(id -u)" -eq 0 ] && echo "user root;"
	cat <<EOF
daemon off;
worker_processes 1;
pid $N/nginx.pid;
error_log $N/error.log;
events { worker_connections 256; }
http {
	include /etc/nginx/mime.types;
	access_log $N/access.log;
	client_body_temp_path $N/tmp/body;
	proxy_temp_path $N/tmp/proxy;
	fastcgi_temp_path $N/tmp/fastcgi;
	include $N/example.conf;
}
EOF
} >"$N/nginx.conf"
nginx -p "$N" -c "$N/nginx.conf" -t >"$N/t.out" 2>&1
is "$?" 0 "nginx -t accepts examples/nginx.conf as written"
nginx -p "$N" -c "$N/nginx.conf" 2>>"$N/error.log" &
NGINX=$!
# stop_nginx: by its pid, waiting for it (the cleanup kills it otherwise)
stop_nginx() {
	[ -n "${NGINX:-}" ] || return 0
	kill "$NGINX" 2>/dev/null
	wait "$NGINX" 2>/dev/null
	NGINX=
}
wait_for 10 sh -c "curl -s -o /dev/null '$URL/static/'" ||
	bail "nginx did not answer on $URL: $(cat "$N/error.log")"

# asset_of: the asset path the page names (through nginx)
asset_of() { curl -fsS --max-time 5 "$URL/" | awk '{ print $2 }'; }
code_of() { curl -s --path-as-is -o /dev/null -w '%{http_code}' --max-time 5 "$URL$1"; }
prev_sha() { _l=$(readlink "$ROOT/previous" 2>/dev/null); echo "${_l#releases/}"; }

# under_load ARGS...: deploy ARGS with pageload.py's browsers running
# through it; the first line of their result in $LOAD
under_load() {
	rm -f "$T/load" "$T/load.ready" "$T/load.stop"
	"$PY" "$TESTDIR/pageload.py" "$URL/" "$T/load.stop" "$T/load" 2 100 20000 20 &
	_lpid=$!
	wait_for 10 test -e "$T/load.ready" || diag "the browsers got nothing"
	_t0=$(now_ms)
	run_deploy "$@"
	diag "$* took $(($(now_ms) - _t0)) ms"
	sleep 0.5
	: >"$T/load.stop"
	wait "$_lpid"
	LOAD=$(head -n 1 "$T/load" 2>/dev/null)
	diag "$*: exit $rc; $LOAD"
}

# load_ok DESC VERSIONS: pages and assets all served, each asset the
# page's own release's, the versions seen match VERSIONS (a glob)
load_ok() {
	like "$LOAD" "pages=[1-9]* pages_failed=0 *" "$1: no failed page"
	like "$LOAD" "* assets=[1-9]* assets_failed=0 mismatched=0 *" \
	    "$1: no failed asset, none another release's"
	case $LOAD in
	*" pages_failed=0 "*" assets_failed=0 mismatched=0 "*) ;;
	*) sed -n '2,8p' "$T/load" | sed 's/^/#   /' >&2 ;;
	esac
	like "${LOAD##*versions=}" "$2" "$1: pages of $2 served"
}

# 1. the first deploy: nothing before it
run_deploy deploy
rc_is 0 "first deploy"
A1=$(asset_of)
like "$A1" "/static/app.*.css" "the page names a fingerprinted stylesheet"
isnt "$A1" "/static/app.css" "... not the plain name"
like "$(curl -fsS --max-time 5 "$URL$A1")" "*v1*" "nginx serves it from the release"
ok "collectstatic wrote it into the release" test -f "$ROOT/releases/$V1/public$A1"
ok "no previous after the first deploy" test ! -e "$ROOT/previous" -a ! -L "$ROOT/previous"

# 2. two deploys under load
V2=$(commit_v v2)
under_load deploy
rc_is 0 "deploy v2 under load"
load_ok "deploy v2" "v1,v2"
is "$(prev_sha)" "$V1" "previous is v1, the release before"
A2=$(asset_of)
isnt "$A2" "$A1" "v2's stylesheet has another name"
like "$(curl -fsS --max-time 5 "$URL$A1")" "*v1*" "a v1 page still gets its stylesheet after the roll"

V3=$(commit_v v3)
under_load deploy
rc_is 0 "deploy v3 under load"
load_ok "deploy v3" "v2,v3"
is "$(prev_sha)" "$V2" "previous is v2"
is "$(code_of "$A1")" 404 "v1's stylesheet is gone with v1's grace (two switches ago)"

# 3. rollback under load: v3's pages keep theirs, v2's come back
under_load rollback
rc_is 0 "rollback under load"
load_ok "rollback" "v2,v3"
is "$(current_sha)" "$V2" "current is v2"
is "$(prev_sha)" "$V3" "previous is v3, the release rolled back from"

# 4. a release that fails its check: switched back
touch "$APP/BAD_HEALTH"
V4=$(commit_v v4)
under_load deploy
rc_is 4 "a release that fails its check: exit 4"
load_ok "failed check and switch back" "v2*"
is "$(current_sha)" "$V2" "current is v2 again"
is "$(prev_sha)" "$V4" "previous is v4, whose processes served until the switch back"
is "$(list_state "$V4")" failed "v4 is listed failed"
grep_ok "v4's pages were served during its roll" "$T/load" 'versions=.*v4'

# 5. prune keeps what previous names; nothing else is served
run_deploy prune -k 2
rc_is 0 "prune -k 2"
ok "the failed v4 stays: previous names it" test -d "$ROOT/releases/$V4"
ok "v1 stays too (the rollback target)" test -d "$ROOT/releases/$V1"
A4=$(ls "$ROOT/releases/$V4/public/static/" | grep '^app\..*\.css$' | head -n 1)
like "$(curl -fsS --max-time 5 "$URL/static/$A4")" "*v4*" "v4's stylesheet is still served (from previous)"
is "$(code_of "$A1")" 404 "but v1's stylesheet, in neither current nor previous: 404"
is "$(code_of /static/nothing.css)" 404 "a name no release has: 404"
is "$(code_of /static/../shared/deploy.conf)" 404 "nothing outside static/"
rm -f "$APP/BAD_HEALTH"

# 6. the next deploy: previous is the release it leaves, v4 can go
V5=$(commit_v v5)
run_deploy deploy
rc_is 0 "deploy v5"
is "$(prev_sha)" "$V2" "previous is v2"
run_deploy prune -k 2
ok "prune removes v4 now that nothing names it" test ! -e "$ROOT/releases/$V4"
is "$(code_of "/static/$A4")" 404 "and its stylesheet is no longer served"

stop_nginx
ok "nginx stopped" test -z "$(pids_with_env DEPLOY_TEST_T "$T" | while read -r p; do
	case $(readlink "/proc/$p/exe") in */nginx) echo "$p" ;; esac; done)"
grep_nok "nginx logged no error but misses" "$N/error.log" '\[(crit|alert|emerg)\]'

done_testing
