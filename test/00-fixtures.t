#!/bin/sh
# The harness itself, without deploy: the wheel installs with pip from
# $T/wheels only, the app repo's test suite passes and can be made to fail,
# supervisord runs the app from where `current` points, and the helpers see
# it.  If this fails, failures in the other tests say nothing about deploy.
. "$(dirname "$0")/lib.sh"

make_app
start_supervisord

ok "the wheel was built" [ -f "$T/wheels/appdep-1.0-py3-none-any.whl" ]
A=$(sha_of HEAD)
like "$A" "????????????????????????????????????????" "the app repo has a commit"

# a release by hand, as deploy would build it
R=$ROOT/releases/$A
mkdir -p "$ROOT/releases"
run git clone -q "$APP" "$R"
rc_is 0 "git clone of the app"
run virtualenv -q -p python3 "$R/.venv"
rc_is 0 "virtualenv"
run "$R/.venv/bin/python" -m pip install -r "$R/requirements.txt"
rc_is 0 "pip installs the wheel with no index"
run "$R/.venv/bin/python" -c 'import appdep; print(appdep.VERSION)'
is "$(out)" 1.0 "the wheel's module imports"

cd "$R" || bail "no release"
run env PATH="$R/.venv/bin:$PATH" DEPLOY_REVISION="$A" python check_app.py "$TESTRUNS"
rc_is 0 "the app's test suite passes"
is "$(testruns_of "$A")" 1 "check_app.py logs its run"
touch FAIL_TESTS
run env PATH="$R/.venv/bin:$PATH" python check_app.py
rc_is 1 "the test suite fails while FAIL_TESTS exists"
rm -f FAIL_TESTS
cd "$T" || exit 1

ln -s "releases/$A" "$ROOT/current"
run sv start app
rc_is 0 "supervisorctl start app"
is "$(app_state)" RUNNING "the app is RUNNING"
ok "the app runs from the release current points to" app_runs_from "$A"
ok "the app wrote its state" wait_for 5 test -s "$APPSTATE"
like "$(cat "$APPSTATE")" "* $R v1 1.0" "its state names its folder and versions"

cd "$R" || exit 1
run "$R/.venv/bin/python" health.py "$APPSTATE"
rc_is 0 "health.py passes for the running release"
cd "$T" || exit 1

# a crashing app reaches FATAL quickly
touch "$R/CRASH"
run svctl restart app
app_fatal() { [ "$(app_state)" = FATAL ]; }
ok "a crashing app ends FATAL or BACKOFF" wait_for 10 app_fatal
rm -f "$R/CRASH"

# hang.sh leaves children that the helpers can find
PIDS=$T/hang.pids
DEPLOY_TEST_MARK=fixture "$R/hang.sh" "$PIDS" &
wait_for 5 test -s "$PIDS"
ok "hang.sh children carry the mark" [ "$(marked_pids fixture | wc -l)" -ge 3 ]
for p in $(marked_pids fixture); do kill -9 "$p"; done
wait
ok "and are gone once killed" wait_for 5 sh -c '[ -z "$(grep -lzxF DEPLOY_TEST_MARK=fixture /proc/[0-9]*/environ 2>/dev/null)" ]'

svctl stop app >/dev/null 2>&1

# the run's cache of shared fixtures (make test's DEPLOY_TEST_CACHE): three
# files racing to fill its entries all get whole copies of one build, and
# what a file does to its copy stays in its copy
C=$T/cache
mkdir -p "$C"
for i in 1 2 3; do
	(
		DEPLOY_TEST_CACHE=$C
		T=$T/race$i
		APP=$T/app
		mkdir -p "$T" && make_app
	) &
done
wait
heads=$(for i in 1 2 3; do git -C "$T/race$i/app" rev-parse HEAD; done | sort -u)
like "$heads" "????????????????????????????????????????" "three racing files got one build of the app repo"
ok "a copy is a sound repo" git -C "$T/race2/app" fsck --no-progress --strict
ok "each has the wheel" [ -f "$T/race3/wheels/appdep-1.0-py3-none-any.whl" ]
is "$(cd "$C" && ls -A | sed 's/-.*//' | sort | tr '\n' ' ')" "app wheel " \
    "the cache holds one app and one wheel, no half-built entry"
APP=$T/race1/app new_commit changed >/dev/null
is "$(git -C "$C"/app-*/app rev-parse HEAD)" "$heads" "a commit in a copy leaves the cache's repo as it was"
is "$(git -C "$T/race3/app" rev-parse HEAD)" "$heads" "and the other copies"

# the seed venv (test/fixtures.sh): a first deploy of the app on a new root
# reuses the venv a deploy in the cache's own root built, under deploy's
# key, and the copy names its own path, not the one it was built at
DEPLOY_TEST_CACHE=$T/cache2
mkdir -p "$DEPLOY_TEST_CACHE"
ROOT=$T/seedroot
setup_root "-program" "-supervisorctl"
run_deploy deploy
rc_is 0 "a first deploy with the seed venv"
grep_ok "it reuses the seed venv" "$T/out" '^\[[0-9]+\] venv skipped \(reused venvs/\)$'
key=$(cat "$DEPLOY_TEST_CACHE"/seed-venv-*/key)
is "$(readlink "$ROOT/current/.venv")" "../../venvs/$key" \
    "current's .venv is the seed, under the key deploy gave it"
V=$ROOT/venvs/$key
is "$(head -n 1 "$V/bin/pip")" "#!$V/bin/python" "its pip script names its own path"
like "$("$V/bin/pip" --version 2>&1)" "pip * from $V/lib/*" "and that pip runs from it"
is "$("$ROOT/current/.venv/bin/python" -c 'import appdep; print(appdep.VERSION)')" \
    "1.0" "the app's dependency imports from it"
ok "the cache's own root is gone" [ -z "$(ls -d "$DEPLOY_TEST_CACHE"/seed-venv-*/root 2>/dev/null)" ]
done_testing
