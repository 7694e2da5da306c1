#!/bin/sh
# Process groups at the edges: a SIGKILL to deploy's whole process group
# (timeout -s KILL, a CI runner) still ends the step's children; a timed-out
# step's grandchildren get SIGTERM and time to act on it before SIGKILL;
# a step group orphaned with both deploy and its guard killed is ended by
# the next run; a restart command's background daemon outlives a restart
# that exits 0.
. "$(dirname "$0")/lib.sh"

setup_root
A=$(sha_of HEAD)
run_deploy deploy
rc_is 0 "first deploy (A)"
B=$(new_commit v2)

# ---- kill -9 of deploy's process group
write_conf "test = python check_app.py $TESTRUNS 1000"
rm -f "$TESTRUNS.started"
# setsid: deploy leads its own process group, as under timeout(1) or a CI job
setsid env DEPLOY_TEST_MARK=pgkill "$DEPLOY" -C "$ROOT" deploy "$B" \
    >"$T/pg.out" 2>&1 </dev/null &
ok "the deploy reaches its test step" wait_for 60 test -s "$TESTRUNS.started"
read -r lpid cpid <"$TESTRUNS.started"
dpid=$(ps -o ppid= -p "$lpid" | tr -d ' ')
pgid=$(ps -o pgid= -p "$dpid" | tr -d ' ')
is "$pgid" "$dpid" "deploy leads its own process group"
kill -9 "-$pgid"	# dash: no "--" here
ok "the test suite's child (sleep, pid $cpid) is ended within 5 s" \
	wait_for 5 sh -c "! kill -0 $cpid 2>/dev/null"
no_marked_procs "nothing of that deploy is left" pgkill
is "$(current_link)" "releases/$A" "current unchanged"

# ---- a step that times out: its grandchild gets SIGTERM and the grace
# The step leader, on TERM, waits up to 3 s for the grandchild's marker.
cat >"$T/lead.sh" <<'EOF'
trap 'i=0; while [ ! -e "$1" ] && [ $i -lt 30 ]; do sleep 0.1; i=$((i + 1)); done; exit 1' TERM
sh "${0%/*}/mid.sh" "$1" &
wait
EOF
cat >"$T/mid.sh" <<'EOF'
sh "${0%/*}/leaf.sh" "$1" &
wait
EOF
cat >"$T/leaf.sh" <<'EOF'
trap 'echo TERM >"$1"; exit 0' TERM
echo $$ >"$1.pid"
sleep 1000 &
wait
EOF
write_conf "timeout = 2" "test = sh $T/lead.sh $T/marker"
MARK=tmo
run_deploy deploy "$B"
MARK=main
rc_is 1 "a test step that times out fails the deploy: exit 1"
ok "its grandchild was running" test -s "$T/marker.pid"
ok "its grandchild got SIGTERM before SIGKILL (wrote its marker)" \
	test -s "$T/marker"
no_marked_procs "nothing of that step is left" tmo
is "$(current_link)" "releases/$A" "current unchanged"

# ---- deploy and its guard both killed: the next run ends the step group
write_conf "test = python check_app.py $TESTRUNS 1000"
rm -f "$TESTRUNS.started"
bg_deploy orphan deploy "$B"
ok "the deploy reaches its test step" wait_for 60 test -s "$TESTRUNS.started"
read -r lpid cpid <"$TESTRUNS.started"
guard=
for c in $(pgrep -P "$bgpid"); do
	[ "$c" = "$lpid" ] && continue
	[ "$(readlink "/proc/$c/exe")" = "$(readlink "/proc/$bgpid/exe")" ] &&
		guard=$c
done
isnt "$guard" "" "deploy has a guard process beside the step"
# the guard first, so that it cannot act on deploy's death
[ -n "$guard" ] && kill -9 "$guard"
kill -9 "$bgpid"
bg_wait
sleep 1
ok "the step's child (sleep, pid $cpid) outlived deploy and guard" \
	alive "$cpid"
write_conf
run_deploy prune
rc_is 0 "the next run (prune) works"
ok "it ended the orphaned step group (sleep, pid $cpid, gone)" \
	wait_for 3 sh -c "! kill -0 $cpid 2>/dev/null"
like "$(out; err)" "*ending process group*" "and says so"
no_marked_procs "nothing of the killed deploy is left" orphan

# ---- a restart command that starts a daemon in the background
write_conf "restart = sh -c \"sleep 1000 >/dev/null 2>&1 & echo \\\$! > $T/daemon.pid\""
grep_ok "the config line is as an admin would write it" \
	"$ROOT/shared/deploy.conf" '^restart = sh -c "sleep 1000 .* & echo \\\$! > '
run_deploy deploy "$B"
rc_is 0 "deploy with a restart command that starts a daemon: exit 0"
is "$(current_link)" "releases/$B" "current is B"
ok "the restart command wrote the daemon's pid" test -s "$T/daemon.pid"
d=$(cat "$T/daemon.pid" 2>/dev/null)
ok "the daemon it started is still running" alive "${d:-0}"
[ -n "$d" ] && kill "$d" 2>/dev/null

done_testing
