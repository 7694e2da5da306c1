#!/bin/sh
# poetry.lock installed as locked, by the real poetry (issue 31): a PEP 503
# index of the test's own wheels on 127.0.0.1, a lock made by `poetry lock`
# against it, then newer versions added to the index. The release's venv
# holds exactly what the lock says (pip freeze), not the newest; a
# code-only commit reuses it; a second lock that drops one package and
# bumps the other gives a venv derived from the first, with the dropped
# package gone, and the first release's venv untouched.
. "$(dirname "$0")/lib.sh"

command -v poetry >/dev/null 2>&1 || {
	echo "1..0 # SKIP poetry is not installed (scripts/prereqs)"
	exit 0
}
POETRY_CACHE_DIR=$T/poetry-cache
POETRY_VIRTUALENVS_PATH=$T/poetry-venvs
export POETRY_CACHE_DIR POETRY_VIRTUALENVS_PATH

mkdir -p "$T/index"
for w in appdep extra; do
	"$PY" "$TESTDIR/mkwheel.py" "$T/index" $w 1.0 >/dev/null
done
"$PY" "$TESTDIR/pep503.py" "$T/index" "$T/port" &
wait_for 15 test -s "$T/port" || bail "the index did not start"
URL=http://127.0.0.1:$(cat "$T/port")/simple/

make_app
git -C "$APP" rm -q requirements.txt
# pyproject APPDEP [EXTRA]: the app's pyproject.toml, then its poetry.lock
pyproject() {
	cat >"$APP/pyproject.toml" <<EOF
[tool.poetry]
name = "example"
version = "1.0"
description = "the test app"
authors = ["deploy-test <deploy-test@example.invalid>"]

[tool.poetry.dependencies]
python = "^3.7"
appdep = "$1"
${2:+extra = \"$2\"}

[[tool.poetry.source]]
name = "local"
url = "$URL"
default = true
EOF
	(cd "$APP" && POETRY_VIRTUALENVS_CREATE=false poetry lock -n \
	    >"$T/lock.out" 2>&1) || {
		cat "$T/lock.out" >&2
		bail "poetry lock failed"
	}
}
pyproject "*" "*"
A=$(new_commit poetry-lock-1)
for w in appdep extra; do	# newer than the lock: never installed
	"$PY" "$TESTDIR/mkwheel.py" "$T/index" $w 2.0 >/dev/null
done

freeze() { "$ROOT/releases/$1/.venv/bin/python" -m pip freeze 2>/dev/null | tr '\n' ' '; }
# the lock's packages, as pip freeze names them
locked() {
	awk -F' = ' '/^name = /{ n = $2 } /^version = /{ print n "==" $2 }' \
	    "$APP/poetry.lock" | tr -d '"' | sort | tr '\n' ' '
}

setup_root
run_deploy -n deploy
rc_is 0 "-n with poetry.lock alone: exit 0"
like "$(out)" "*deps: poetry.lock*" "-n says poetry.lock is used"

run_deploy deploy
rc_is 0 "deploy A (poetry.lock)"
is "$(freeze "$A")" "appdep==1.0 extra==1.0 " "A's venv: what the lock says"
is "$(freeze "$A")" "$(locked)" "A's pip freeze equals the lock"
is "$(testruns_of "$A")" 1 "A's tests ran with its packages"
ok "the app runs from A" app_runs_from "$A"

B=$(new_commit code-only)
run_deploy deploy
rc_is 0 "deploy B, code only"
grep_ok "B reuses A's venv" "$T/out" '^\[[0-9]+\] pip skipped \(poetry.lock unchanged\)'
is "$(readlink "$ROOT/releases/$B/.venv")" "$(readlink "$ROOT/releases/$A/.venv")" \
    "B links A's venv"

pyproject "2.0"
C=$(new_commit poetry-lock-2)
run_deploy deploy
rc_is 0 "deploy C: extra dropped, appdep bumped"
grep_ok "C's venv is derived from A's" "$T/out" '^\[[0-9]+\] venv ok .*derived from venvs/'
is "$(freeze "$C")" "appdep==2.0 " "C's venv: appdep 2.0, extra gone"
is "$(freeze "$C")" "$(locked)" "C's pip freeze equals its lock"
is "$(freeze "$A")" "appdep==1.0 extra==1.0 " "A's venv is untouched"
ok "the app runs from C" app_runs_from "$C"
grep_ok "poetry installed it, into the release's venv" \
    "$ROOT/.deploy/logs/$C.log" 'Installing dependencies from lock file'
ok "poetry made no venv of its own" absent "$T/poetry-venvs"

done_testing
