#!/bin/sh
# A release's life (issue 30): a release whose migrate failed is never
# live, so rollback skips it and prune does not count it; a head that
# failed after its build is not retried by the cron's plain deploy -q
# (no build, no migrate, no restart, exit 0, silent) until named by its
# sha or replaced by a new commit.
. "$(dirname "$0")/lib.sh"

make_app
cat >"$APP/migrate.py" <<'EOF'
"""Migrate: logs the release it ran for; fails while BAD_MIGRATE exists."""
import os
import sys

with open(sys.argv[1], "a") as f:
    f.write("%s\n" % os.environ.get("DEPLOY_REVISION"))
class IntegrityError(Exception):
    pass

if os.path.exists("BAD_MIGRATE"):
    try:
        raise IntegrityError("duplicate key value violates unique constraint")
    except IntegrityError:
        import traceback
        traceback.print_exc()
    for i in range(25):    # what scrolls the cause out of the tail
        sys.stderr.write("rolling back step %d\n" % i)
    sys.exit(1)
EOF
CHECK="check = python health.py $APPSTATE"
setup_root "$CHECK" "check_timeout = 5" "keep = 3" \
    "migrate = python migrate.py $T/migrations"
migrations() { grep -c "^$1\$" "$T/migrations"; }

A=$(new_commit a-first)
run_deploy deploy
rc_is 0 "A deploys"

# ---- a migrate that fails: B never goes live
touch "$APP/BAD_MIGRATE"
B=$(new_commit b-bad-migration)
run_deploy deploy
rc_is 1 "B's migrate fails: exit 1"
grep_ok "the tail shows the exception line that scrolled out of it" \
    "$T/err" "^  \| \.\.\. IntegrityError: duplicate key value violates"
grep_ok "and the log's path" "$T/err" "full output: .*/\.deploy/logs/$B\.log"
is "$(current_link)" "releases/$A" "A still current"
pid=$(app_pid)
run_deploy -q deploy
rc_is 0 "cron's deploy -q of the same head exits 0"
is "$(cat "$T/out" "$T/err")" "" "and prints nothing"
is "$(migrations "$B")" 1 "and does not migrate B again"
is "$(app_pid)" "$pid" "nor restarts the app"

run_deploy list
grep_ok "list: B is unmigrated" "$T/out" "^$B +complete +[-0-9: ]+ +- +unmigrated +b-bad"
run_deploy rollback "$B"
rc_is 2 "rollback B (its migrate failed) is refused"
grep_ok "and says why, naming activate" "$T/err" "migrate failed.*activate"
is "$(current_link)" "releases/$A" "A still current"

rm "$APP/BAD_MIGRATE"
C=$(new_commit c-good)
run_deploy deploy
rc_is 0 "a new commit C deploys"
run_deploy list
grep_ok "list: C is live" "$T/out" "^$C +complete +[-0-9: ]+ +current +live +c-good"
grep_ok "list: A was live and is the rollback target" "$T/out" \
    "^$A +complete +[-0-9: ]+ +rollback +was-live +a-first"
run_deploy list --json
ok "list --json: life and live time per release" "$PY" -c '
import json, sys
r = {x["sha"]: x for x in json.load(open(sys.argv[1]))["releases"]}
a, c = r[sys.argv[2]], r[sys.argv[3]]
assert a["life"] == "was-live" and a["live_epoch"] > 0 and a["rollback"], a
assert c["life"] == "live" and c["current"], c
' "$T/out" "$A" "$C"
run_deploy status
grep_ok "status names A as the rollback target, not B" "$T/out" "^rollback: $A\$"
run_deploy rollback
rc_is 0 "rollback exits 0"
is "$(current_link)" "releases/$A" "rollback lands on A, live before C"
ok "the app runs from A" app_runs_from "$A"
run_deploy deploy "$C"
rc_is 0 "back to C"

# ---- a release that cannot start: switched back, then left alone
touch "$APP/CRASH"
D=$(new_commit d-crash)
rm "$APP/CRASH"
run_deploy deploy
rc_is 4 "D cannot start: exit 4"
grep_ok "exit 4 prints the log's path" "$T/err" "full output: .*/\.deploy/logs/$D\.log"
run_deploy log
like "$(head -n 1 "$T/out")" "== * deploy $D" "deploy log shows D's log, not C's"
is "$(current_link)" "releases/$C" "C current again"
pid=$(app_pid)
tests=$(testruns_of "$D")
run_deploy -q deploy
rc_is 0 "cron's deploy -q after exit 4: exit 0"
is "$(cat "$T/out" "$T/err")" "" "and prints nothing"
is "$(app_pid)" "$pid" "the app was not restarted (same pid)"
is "$(migrations "$D")" 1 "D was not migrated again"
is "$(testruns_of "$D")" "$tests" "nor rebuilt or tested"
is "$(current_link)" "releases/$C" "C still current"
run_deploy status
grep_ok "status says the head failed, when, with which exit, how to retry" \
    "$T/out" "^failed head: $D at [-0-9]+ [0-9:]+ \(exit 4\): a plain deploy skips it; retry: deploy $D, or push a new commit\$"
run_deploy status --json
ok "status --json has failed_head {sha, at, exit}" "$PY" -c '
import json, sys
f = json.load(open(sys.argv[1]))["failed_head"]
assert f["sha"] == sys.argv[2] and f["exit"] == 4 and f["at_epoch"] > 0, f
' "$T/out" "$D"
run_deploy -n deploy
grep_ok "-n says it would skip the failed head" "$T/out" "$D.*failed.*exit 4"
run_deploy deploy "$(printf %.7s "$D")"
rc_is 4 "deploy SHA (7 digits) retries it (and it fails again)"
is "$(migrations "$D")" 2 "the retry migrated D again"

# ---- five failed migrations between live releases, then prune
touch "$APP/BAD_MIGRATE"
for i in 1 2 3 4 5; do
	new_commit "m$i" >/dev/null
	run_deploy -q deploy
	rc_is 1 "failed migration m$i: exit 1"
done
rm "$APP/BAD_MIGRATE"
E=$(new_commit e-good)
run_deploy deploy
rc_is 0 "E deploys"
run_deploy prune
rc_is 0 "prune exits 0"
is "$(releases)" "$(printf '%s\n' "$A" "$C" "$E" | sort | tr '\n' ' ' | sed 's/ $//')" \
    "keep = 3 kept the three that were live; the never-live and failed went"
run_deploy status
grep_ok "rollback target is C" "$T/out" "^rollback: $C\$"
done_testing
