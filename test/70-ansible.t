#!/bin/sh
# contrib/ansible/deploy.yml, run by the real ansible-playbook on a fleet of
# three hosts (local connection, each with its own root and supervisord):
# the ref resolved once, every host prepared before any switch, migrate
# once, one host switched at a time; a failing test on one host switches
# nothing and migrates nothing; a release that will not start on the
# second host (switched in a batch of two) puts every host back on the
# previous release and the third is never switched.
. "$(dirname "$0")/lib.sh"

command -v ansible-playbook >/dev/null ||
	bail "ansible-playbook is not installed (Debian: ansible)"
[ -x "$DEPLOY" ] || bail "no deploy binary at $DEPLOY (run make)"

HOSTS="h1 h2 h3"
# PLAYBOOK=FILE tests another playbook (a planted bug)
: "${PLAYBOOK:=$TOP/contrib/ansible/deploy.yml}"
MIGRATIONS=$T/migrations	# migrate.sh appends "HOST SHA" per run

# ansible keeps to $T: no ~/.ansible, no cfg from the cwd, no colours
HOME=$T/home
ANSIBLE_CONFIG=$T/ansible.cfg
ANSIBLE_LOCAL_TEMP=$T/ansible-local
ANSIBLE_REMOTE_TEMP=$T/ansible-remote
ANSIBLE_NOCOLOR=1
ANSIBLE_FORCE_COLOR=0
ANSIBLE_RETRY_FILES_ENABLED=0
ANSIBLE_DEPRECATION_WARNINGS=0
ANSIBLE_LOCALHOST_WARNING=0
export HOME ANSIBLE_CONFIG ANSIBLE_LOCAL_TEMP ANSIBLE_REMOTE_TEMP \
    ANSIBLE_NOCOLOR ANSIBLE_FORCE_COLOR ANSIBLE_RETRY_FILES_ENABLED \
    ANSIBLE_DEPRECATION_WARNINGS ANSIBLE_LOCALHOST_WARNING
mkdir -p "$HOME" && : >"$ANSIBLE_CONFIG"

# ---------------------------------------------------------------- hosts

# host_sv_up HOST: that host's supervisord answers
host_sv_up() {
	supervisord_up "$T/$1/sv.sock" "$T/$1/supervisord.pid"
}

# start_host HOST: a supervisord of its own (program app, run from the
# host's current), `deploy init`, a config, the binary in shared/
start_host() {
	_h=$T/$1
	mkdir -p "$_h/root"
	{
		supervisord_head "$_h/sv.sock" "$_h"
		app_program "$_h/root" "$_h/appstate" "$_h/app.log"
	} >"$_h/sv.conf"
	supervisord -c "$_h/sv.conf" || bail "supervisord of $1 did not start"
	wait_for 15 host_sv_up "$1" || bail "supervisord of $1 not answering"
	"$DEPLOY" -C "$_h/root" init "$REMOTE" >/dev/null 2>&1 ||
		bail "deploy init of $1 failed"
	cat >"$_h/root/shared/deploy.conf" <<EOF
repo = $REMOTE
supervisorctl = supervisorctl -c $_h/sv.conf
program = app
test = sh -c 'if [ -e "\$DEPLOY_ROOT/shared/FAIL_TESTS" ]; then echo "FAIL_TESTS on this host"; exit 1; fi; exec python check_app.py $_h/testruns'
check = python health.py $_h/appstate
check_timeout = 10
migrate = $T/migrate.sh $1
timeout = 120
EOF
	chmod 0644 "$_h/root/shared/deploy.conf"
	cp "$DEPLOY" "$_h/root/shared/deploy" || bail "cp deploy"
	_keep_root=$ROOT	# the run's seed venv, as run_deploy would give it
	ROOT=$_h/root
	first_build prepare
	ROOT=$_keep_root
}

stop_hosts() {
	for _hn in $HOSTS; do
		[ -f "$T/$_hn/supervisord.pid" ] || continue
		_p=$(cat "$T/$_hn/supervisord.pid" 2>/dev/null)
		kill -TERM "${_p:-0}" 2>/dev/null	# supervisord's shutdown
		wait_for 10 eval "! alive ${_p:-0}" || kill -9 "$_p" 2>/dev/null
		rm -f "$T/$_hn/supervisord.pid"
	done
}
trap '_xst=$?; stop_hosts; (exit $_xst); cleanup' EXIT

# host_current HOST: the sha its current points to
host_current() {
	_l=$(readlink "$T/$1/root/current" 2>/dev/null)
	echo "${_l##*/}"
}

# currents: "h1=SHA h2=SHA h3=SHA"
currents() {
	for _hn in $HOSTS; do
		printf '%s=%s ' "$_hn" "$(host_current "$_hn")"
	done | sed 's/ $//'
}

# all_on SHA: "h1=SHA h2=SHA h3=SHA", to compare with currents
all_on() {
	for _hn in $HOSTS; do
		printf '%s=%s ' "$_hn" "$1"
	done | sed 's/ $//'
}

# host_runs_from HOST SHA: its app is RUNNING from releases/SHA
host_runs_from() {
	set -- "$1" "$2" $("$PY" -S "$TESTDIR/svstate.py" "$T/$1/sv.sock" app)
	_cwd=
	[ "${4:-0}" != 0 ] && _cwd=$(readlink "/proc/$4/cwd")
	[ "${3:-}" = RUNNING ] && [ "$_cwd" = "$T/$1/root/releases/$2" ] &&
		return 0
	diag "$1: app is ${3:-unknown} (pid ${4:-none}) in '$_cwd', not in releases/$2"
	return 1
}

# all_run_from SHA: every host's app runs from that release
all_run_from() {
	_r=0
	for _hn in $HOSTS; do
		host_runs_from "$_hn" "$1" || _r=1
	done
	return $_r
}

# activations HOST SHA: how often the host's history says SHA was activated
activations() {
	[ -f "$T/$1/root/.deploy/history" ] || { echo 0; return; }
	grep -c " activate $2\$" "$T/$1/root/.deploy/history" 2>/dev/null || true
}

# migrations_of SHA: how many migrate runs there were for SHA
migrations_of() {
	[ -f "$MIGRATIONS" ] || { echo 0; return; }
	grep -c " $1\$" "$MIGRATIONS" 2>/dev/null || true
}

# mtime PATH: its own mtime (not the target's), seconds with fraction
mtime() {
	find "$1" -maxdepth 0 -printf '%T@\n'
}

# playbook ARGS...: the playbook on the three hosts, bounded in time
playbook() {
	_t0=$(now_ms)
	run env LC_ALL=C.UTF-8 timeout -k 5 300 ansible-playbook -i "$T/inventory" "$PLAYBOOK" "$@"
	diag "ansible-playbook $*: exit $rc, $(( $(now_ms) - _t0 )) ms"
}

cat >"$T/migrate.sh" <<EOF
#!/bin/sh
# the app's "migration": one line per run, "HOST SHA"
echo "\$1 \$DEPLOY_REVISION" >>"$MIGRATIONS"
EOF
chmod +x "$T/migrate.sh"

make_app
{
	echo "[fleet]"
	for n in $HOSTS; do
		echo "$n deploy_root=$T/$n/root"
	done
	echo "[all:vars]"
	echo "ansible_connection=local"
	echo "ansible_python_interpreter=/usr/bin/python3"
} >"$T/inventory"
for n in $HOSTS; do
	start_host "$n"
done

# ---- first deploy of the fleet: nothing to go back to
A=$(sha_of main)
playbook -e deploy_ref=main
rc_is 0 "first fleet deploy: ansible-playbook exits 0"
is "$(currents)" "$(all_on "$A")" "every host on main's sha"
ok "every host's app runs from it" all_run_from "$A"
is "$(migrations_of "$A")" 1 "migrate ran once"

# ---- (a) a new commit to all three
B=$(new_commit v2)
playbook -e deploy_ref=main
rc_is 0 "(a) ansible-playbook exits 0"
is "$(currents)" "$(all_on "$B")" "(a) every host on the new sha"
ok "(a) every host's app runs from it" all_run_from "$B"
is "$(migrations_of "$B")" 1 "(a) migrate ran exactly once"
grep_ok "(a) on the first host" "$MIGRATIONS" "^h1 $B\$"
for n in $HOSTS; do
	is "$(activations "$n" "$B")" 1 "(a) $n activated it once"
done
grep_ok "(a) the report names each host's release" "$T/out" \
    "h3 ends on $B \\(new; activation ok\\)"
# two phases: every test run and the migration happened before the first
# switch, and the hosts switched one after another, in inventory order
t1=$(mtime "$T/h1/root/current")
t2=$(mtime "$T/h2/root/current")
t3=$(mtime "$T/h3/root/current")
last_test=$(for n in $HOSTS; do mtime "$T/$n/testruns"; done | sort -n | tail -n 1)
ok "(a) all hosts tested before the first switch" \
    awk "BEGIN { exit !($last_test < $t1) }"
ok "(a) migrated before the first switch" \
    awk "BEGIN { exit !($(mtime "$MIGRATIONS") < $t1) }"
ok "(a) switched h1, then h2, then h3" \
    awk "BEGIN { exit !($t1 < $t2 && $t2 < $t3) }"
diag "$(awk "BEGIN { printf \"mixed-version window, 3 hosts, batch 1: %.2f s (h1 to h2 %.2f s, h2 to h3 %.2f s)\", $t3 - $t1, $t2 - $t1, $t3 - $t2 }")"

# ---- (b) the tests fail on h2 only: nothing switches, nothing migrates
pids_b=$(for n in $HOSTS; do "$PY" -S "$TESTDIR/svstate.py" "$T/$n/sv.sock" app; done)
C=$(new_commit v3)
: >"$T/h2/root/shared/FAIL_TESTS"
playbook -e deploy_ref=main
isnt "$rc" 0 "(b) ansible-playbook fails"
is "$(currents)" "$(all_on "$B")" "(b) no host switched"
ok "(b) every app still runs from the old release" all_run_from "$B"
is "$(for n in $HOSTS; do "$PY" -S "$TESTDIR/svstate.py" "$T/$n/sv.sock" app; done)" \
    "$pids_b" "(b) and none was restarted"
is "$(migrations_of "$C")" 0 "(b) migrate never ran"
is "$(for n in $HOSTS; do activations "$n" "$C"; done | tr '\n' ' ')" \
    "0 0 0 " "(b) no history records an activation of it"
grep_ok "(b) the output says why" "$T/out" "FAIL_TESTS on this host"
rm -f "$T/h2/root/shared/FAIL_TESTS"

# ---- (c) the new release will not start on h2, switched together with h1
# (deploy_batch=2): every host back on the old one, h3 never switched
"$PY" - "$APP/app.py" <<'EOF'
import sys
p = sys.argv[1]
s = open(p).read()
s = s.replace("import time\n", """import time

if os.path.exists("../../shared/NOSTART"):
    sys.stderr.write("app: NOSTART on this host\\n")
    sys.exit(3)
""", 1)
open(p, "w").write(s)
EOF
D=$(new_commit v4)
: >"$T/h2/root/shared/NOSTART"
playbook -e deploy_ref=main -e deploy_batch=2
isnt "$rc" 0 "(c) ansible-playbook fails"
is "$(currents)" "$(all_on "$B")" "(c) every host back on the previous release"
ok "(c) every app runs from it" all_run_from "$B"
is "$(migrations_of "$D")" 1 "(c) migrate ran once"
is "$(activations h1 "$D")" 1 "(c) h1 had switched to the new release"
is "$(activations h2 "$D")" 1 "(c) h2 tried it"
grep_ok "(c) h2 marked it failed" "$T/h2/root/.deploy/history" " failed $D\$"
is "$(activations h3 "$D")" 0 "(c) h3 was never switched"
grep_ok "(c) the report: h1 back on the previous release" "$T/out" \
    "h1 ends on $B \\(previous; activation ok\\)"
grep_ok "(c) the report: h2's activation failed" "$T/out" \
    "h2 ends on $B \\(previous; activation failed\\)"
grep_ok "(c) the report: h3 never tried" "$T/out" \
    "h3 ends on $B \\(previous; activation pending\\)"
# batch 2: h1 and h2 in the first batch's activate task, h3 in none
is "$(awk '/^TASK \[activate\]/ { n++; next } /^TASK/ { if (n == 1) n++ }
    n == 1 && /^(changed|fatal|ok): \[h[0-9]\]/ { sub(/\].*/, ""); sub(/.*\[/, ""); print }' \
    "$T/out" | sort | tr '\n' ' ')" "h1 h2 " "(c) h1 and h2 were activated in one batch"
grep_ok "(c) the failure names h2" "$T/out" "activation of $D failed on h2;"

done_testing
