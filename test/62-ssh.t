#!/bin/sh
# examples/circleci-config.yml and examples/github-deploy.yml, run as
# written against a real sshd on 127.0.0.1: the deploy step's script is
# taken out of the YAML (python3-yaml) and run by sh with only the server
# swapped for the test's (host, port, user, root; see ci_script).  The
# remote exit status and output come back; a connection dropped in the
# middle of the test step (no terminal: ssh without -t) stops the deploy
# before the switch, current unchanged and nothing half-built, and the
# next deploy over ssh succeeds.
. "$(dirname "$0")/lib.sh"

SSHD=$(command -v sshd || echo /usr/sbin/sshd)
if [ ! -x "$SSHD" ] || ! command -v ssh >/dev/null 2>&1 ||
    ! "$PY" -c 'import yaml' 2>/dev/null; then
	echo "1..0 # SKIP needs openssh-server, openssh-client, python3-yaml (scripts/prereqs)"
	exit 0
fi

setup_root "test = python check_app.py $TESTRUNS 3"
cp "$DEPLOY" "$ROOT/shared/deploy" || bail "cannot copy the binary"
A=$(sha_of HEAD)

# ---- the server: its own sshd_config, host key and client key in $T/ssh
S=$T/ssh
mkdir -p "$S" "$T/home"
ssh-keygen -q -t ed25519 -N '' -f "$S/host" || bail "ssh-keygen host"
ssh-keygen -q -t ed25519 -N '' -f "$S/client" || bail "ssh-keygen client"
cp "$S/client.pub" "$S/authorized_keys"
PORT=$(free_port)
USER_=$(id -un)
# a real server would have pip's settings in pip.conf; this one has the
# test's offline ones, and the test's mark so that cleanup finds what runs
cat >"$S/sshd_config" <<EOF
ListenAddress 127.0.0.1
Port $PORT
HostKey $S/host
PidFile $S/sshd.pid
AuthorizedKeysFile $S/authorized_keys
StrictModes no
PermitRootLogin yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
SetEnv DEPLOY_TEST_T=$T PIP_NO_INDEX=1 PIP_FIND_LINKS=$T/wheels PIP_DISABLE_PIP_VERSION_CHECK=1 LC_ALL=C
EOF
[ "$(id -u)" = 0 ] && mkdir -p /run/sshd	# privilege separation dir
"$SSHD" -D -e -f "$S/sshd_config" 2>"$S/sshd.log" &
sshdpid=$!
port_open() { "$PY" -c "import socket; socket.create_connection(('127.0.0.1', $PORT), 1)" 2>/dev/null; }
wait_for 10 port_open || {
	cat "$S/sshd.log" >&2
	bail "sshd did not start"
}

# the client: ~ is $T/home for the script; ssh reads ~ from the password
# file, so -F names its config, which sends it to this server
cat >"$S/ssh_config" <<EOF
Host 127.0.0.1
	Port $PORT
	User $USER_
	IdentityFile $S/client
	UserKnownHostsFile $T/home/.ssh/known_hosts
	GlobalKnownHostsFile /dev/null
	StrictHostKeyChecking yes
	BatchMode yes
	ConnectTimeout 10
EOF

# ci_script FILE JOB: JOB's step script from FILE with the server swapped:
# example.com -> 127.0.0.1, ssh-keyscan gets -p PORT, ssh gets -F CONFIG,
# deploy@ -> this user, /var/www/example -> $ROOT.  Fails unless each of
# these is in the script, so an edited example cannot slip past.
ci_script() {
	"$PY" - "$1" "$2" "$PORT" "$S/ssh_config" "$USER_" "$ROOT" <<'EOF'
import re, sys, yaml
path, job, port, conf, user, root = sys.argv[1:]
doc = yaml.safe_load(open(path))
scripts = []
for step in doc["jobs"][job]["steps"]:
    run = step.get("run") if isinstance(step, dict) else None
    if isinstance(run, dict):
        run = run.get("command")
    if run and "ssh " in run:
        scripts.append(run)
assert len(scripts) == 1, "want one ssh step in %s, got %d" % (job, len(scripts))
s = scripts[0]
for old, new in (("ssh-keyscan ", "ssh-keyscan -p %s " % port),
                 ("deploy@example.com", "%s@example.com" % user),
                 ("example.com", "127.0.0.1"),
                 ("/var/www/example", root)):
    assert old in s, "%r not in the script" % old
    s = s.replace(old, new)
# ssh the command, not ~/.ssh the folder
s, n = re.subn(r"(?m)(^|(?<=[\s;&|]))ssh ", "ssh -F %s " % conf, s)
assert n == 1, "want one ssh command, got %d" % n
sys.stdout.write(s)
EOF
}

# ci_run FILE JOB SHA-VARIABLE SHA: runs the step's script as CI would
ci_run() {
	ci_script "$1" "$2" >"$T/ci.sh" || bail "cannot take the script out of $1"
	rm -rf "$T/home/.ssh"
	run env HOME="$T/home" "$3=$4" SSH_KEY="$(cat "$S/client")" \
	    timeout -k 5 "$DEPLOY_TEST_LIMIT" sh -e "$T/ci.sh"
}

CIRCLE=$TOP/examples/circleci-config.yml
GH=$TOP/examples/github-deploy.yml

# ---- CircleCI, as written
ok "circleci: version 2.1, deploy requires test, main only" "$PY" -c '
import sys, yaml
d = yaml.safe_load(open(sys.argv[1]))
assert d["version"] == 2.1
j = [x for x in d["workflows"]["test-and-deploy"]["jobs"] if isinstance(x, dict)][0]
assert j["deploy"]["requires"] == ["test"]
assert j["deploy"]["filters"]["branches"]["only"] == "main"
assert "test" in d["jobs"]' "$CIRCLE"
ci_run "$CIRCLE" deploy CIRCLE_SHA1 "$A"
rc_is 0 "circleci: the deploy step exits 0 over ssh"
grep_ok "circleci: deploy's step lines come back" "$T/out" '^\[[0-9]+\] switch ok'
is "$(current_link)" "releases/$A" "circleci: current is the sha CI passed"
ok "circleci: the app runs from it" app_runs_from "$A"
grep_ok "circleci: ssh-keyscan filled known_hosts (hashed)" \
    "$T/home/.ssh/known_hosts" '^\|1\|'

# the remote's failure comes back as the step's failure
B=$(new_commit v2)
touch "$APP/FAIL_TESTS"
git -C "$APP" add FAIL_TESTS && git -C "$APP" commit -qm fail
F=$(sha_of HEAD)
ci_run "$CIRCLE" deploy CIRCLE_SHA1 "$F"
rc_is 1 "circleci: a release whose tests fail: the step exits 1"
grep_ok "circleci: the FAILED line comes back on stderr" "$T/err" \
    '^\[[0-9]+\] test FAILED'
is "$(current_link)" "releases/$A" "circleci: current is still A"

# ---- GitHub Actions, as written
ok "github: on push to main, deploy needs test" "$PY" -c '
import sys, yaml
d = yaml.safe_load(open(sys.argv[1]))
on = d.get("on", d.get(True))     # YAML 1.1 reads a bare on as true
assert on["push"]["branches"] == ["main"]
assert d["jobs"]["deploy"]["needs"] == "test"
assert "test" in d["jobs"]' "$GH"
ci_run "$GH" deploy GITHUB_SHA "$B"
rc_is 0 "github: the deploy step exits 0 over ssh"
is "$(current_link)" "releases/$B" "github: current is the sha CI passed"
ok "github: the app runs from it" app_runs_from "$B"
ok "github: the key went where the script put it, mode 0600" \
    test "$(stat -c %a "$T/home/.ssh/id_deploy")" = 600

# ---- the connection drops during the test step (CI cancelled the job)
git -C "$APP" rm -q FAIL_TESTS
C=$(new_commit v3)
ci_script "$GH" deploy >"$T/ci.sh" || bail "no script"
rm -rf "$T/home/.ssh" "$TESTRUNS.started"
env HOME="$T/home" GITHUB_SHA="$C" SSH_KEY="$(cat "$S/client")" \
    sh -e "$T/ci.sh" >"$T/drop.out" 2>&1 </dev/null &
cipid=$!
wait_for 60 test -s "$TESTRUNS.started"
ok "the test step of C started on the server" test -s "$TESTRUNS.started"
# the ssh client the script runs: a child of that sh
sshpid=$(pgrep -P "$cipid" -x ssh)
ok "found the ssh client" test -n "$sshpid"
[ -n "$sshpid" ] && kill -9 "$sshpid"
wait "$cipid"
isnt "$?" 0 "the CI step fails when its connection drops"
# no terminal, so no SIGHUP: the deploy sees its output's reader go away
# and stops as for SIGHUP, before the switch
remote_done() { ! pgrep -f "^$ROOT/shared/deploy -w 600 deploy $C" >/dev/null; }
ok "the deploy on the server stops" wait_for 30 remote_done
is "$(current_link)" "releases/$B" "current is unchanged: B"
ok "nothing half-built: no releases/$C" absent "$ROOT/releases/$C"
grep_ok "the log says why" "$ROOT/.deploy/logs/$C.log" \
    "test interrupted .*SIGHUP \\(the reader of deploy's output went away\\)"
run "$ROOT/shared/deploy" list
grep_ok "and points to a complete release" "$T/out" \
    "^$B +complete .*current"

# the next deploy over ssh (waits with -w 600 if the dropped one still runs)
ci_run "$GH" deploy GITHUB_SHA "$C"
rc_is 0 "the next deploy over ssh exits 0"
is "$(current_link)" "releases/$C" "current is C"
ok "the app runs from C" app_runs_from "$C"
run "$ROOT/shared/deploy" list
grep_ok "list: C complete and current" "$T/out" "^$C +complete .*current"
grep_nok "list: no incomplete release left behind" "$T/out" ' incomplete '

kill "$sshdpid" 2>/dev/null
done_testing
