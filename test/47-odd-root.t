#!/bin/sh
# A deploy root whose path has spaces and non-ASCII characters, a remote
# repository with the same, a linked shared file and an envfile with spaces
# in their names: init, deploy (venv, pip, test, switch, restart), a second
# deploy, rollback, list, status, prune and the no-argument form
# ROOT/shared/deploy all work there.
. "$(dirname "$0")/lib.sh"
. "$TESTDIR/hostile.sh"

ODD="déploy root ✓ 'x' \$HOME"
ROOT="$T/$ODD/www app"
APP="$T/app repo ü"
REMOTE=$APP
mkdir -p "$ROOT" "$T/runs ü"
TESTRUNS="$T/runs ü/testruns"

# lib.sh's supervisord quotes the program's path: the root holds spaces
start_supervisord

setup_root "test = python check_app.py \"$TESTRUNS\"" \
	"link = 'config file ✓.ini'" "envfile = app env ✓.txt" "keep = 2"
echo "db=prod" >"$ROOT/shared/config file ✓.ini"
printf 'GREETING=héllo wörld\n' >"$ROOT/shared/app env ✓.txt"
A=$(sha_of HEAD)

run_deploy deploy
rc_is 0 "a full deploy into '$ODD/www app' exits 0"
is "$(current_link)" "releases/$A" "current is releases/<sha>"
ok "the release's virtualenv works" "$ROOT/releases/$A/.venv/bin/python" -c 'import appdep'
is "$(app_state)" RUNNING "the app is RUNNING"
is "$(app_cwd)" "$ROOT/releases/$A" "from the release, path and all"
rq=$(glob_quote "$ROOT")
like "$(grep "^rev=$A " "$TESTRUNS")" \
	"rev=$A cwd=$rq/releases/$A release=$rq/releases/$A root=$rq *greeting=héllo wörld" \
	"the test ran in the release, with the envfile's GREETING"
is "$(cat "$ROOT/current/config file ✓.ini")" "db=prod" "the shared file is linked in"

B=$(new_commit v2)
cp "$DEPLOY" "$ROOT/shared/deploy"
cd / || exit 1
run timeout -k 5 "$DEPLOY_TEST_LIMIT" "$ROOT/shared/deploy"
rc_is 0 "'ROOT/shared/deploy' with no arguments finds the odd root and deploys"
is "$(current_link)" "releases/$B" "current is B"
ok "the app runs from B" app_runs_from "$B"
cd "$T" || exit 1

run_deploy list
rc_is 0 "list exits 0"
is "$(awk '{ print $1 }' "$T/out" | tr '\n' ' ')" "$B $A " "list shows B and A"
run_deploy status
rc_is 0 "status exits 0"
grep_ok "status names B current" "$T/out" "^current: $B "

run_deploy rollback
rc_is 0 "rollback exits 0"
is "$(current_link)" "releases/$A" "current is A"
ok "the app runs from A" app_runs_from "$A"

run_deploy deploy
rc_is 0 "deploy B again (an existing release)"
C=$(new_commit v3)
run_deploy deploy
rc_is 0 "deploy C (its prune step removes A)"
is "$(releases)" "$(sorted_words "$B" "$C")" "keep = 2: B and C remain"
ok "the app runs from C" app_runs_from "$C"
is "$(cat "$ROOT/shared/config file ✓.ini")" "db=prod" "the shared file survived prune"

done_testing
