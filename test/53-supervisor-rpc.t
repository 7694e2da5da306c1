#!/bin/sh
# deploy speaks supervisord's XML-RPC itself (issue 32): a deploy with a
# program and a restart, and a cron run with nothing new, start no
# supervisorctl (strace); a socket that accepts and never answers, one
# that refuses, an answer cut short and an answer that is no XML-RPC each
# give one clear line, exit 2, within the call's deadline (10 s), with
# nothing fetched, built or switched. A program that dies after its
# restart confirmed it, while the check runs, is switched back.
. "$(dirname "$0")/lib.sh"

setup_root
A=$(sha_of HEAD)
run_deploy deploy
rc_is 0 "deploy A"
B=$(new_commit second)

# ---- no supervisorctl in a deploy's path
# straced DESC ARGS...: deploy ARGS under strace, execs and writes (what
# deploy asks supervisord) in $T/strace
straced() {
	run timeout -k 5 "$DEPLOY_TEST_LIMIT" strace -f -qq -s 4096 \
	    -e trace=execve,write,sendto -o "$T/strace" \
	    env DEPLOY_TEST_MARK="$MARK" "$DEPLOY" -C "$ROOT" "$@"
}
straced deploy
rc_is 0 "deploy B under strace: exit 0"
ok "B runs: it was restarted" app_runs_from "$B"
grep_ok "strace saw deploy's own execs (git)" "$T/strace" 'execve\("[^"]*/git"'
grep_nok "and no supervisorctl among them" "$T/strace" 'execve\("[^"]*supervisorctl"'
# a waiting stopProcess keeps supervisord in a busy loop for the whole
# stop (a core, for as long as the program's stopwaitsecs allows)
grep_ok "deploy asked supervisord to stop the program" "$T/strace" \
    'supervisor\.stopProcess</methodName>'
grep_nok "never with wait = true" "$T/strace" \
    'supervisor\.stopProcess</methodName>.*<boolean>1</boolean>'
pid=$(app_pid)
straced -q deploy
rc_is 0 "a cron run with nothing new: exit 0"
grep_ok "strace saw its git fetch" "$T/strace" 'execve\("[^"]*/git"'
grep_nok "it starts no supervisorctl either" "$T/strace" 'execve\("[^"]*supervisorctl"'
is "$(app_pid)" "$pid" "and left the program alone"

# ---- supervisord that is not there, or not itself
C=$(new_commit third)
head=$(git --git-dir="$ROOT/repo" rev-parse -q --verify refs/heads/main)
rels=$(releases)
# broken DESC MODE PATTERN: supervisor = a listener in MODE; refused fast
broken() {
	_sock=$T/$2.sock
	DEPLOY_TEST_T=$T "$PY" "$TESTDIR/svlisten.py" "$_sock" "$2" &
	wait_for 10 test -S "$_sock" || bail "no listener on $_sock"
	write_conf "supervisor = unix://$_sock"
	_t0=$(date +%s)
	run_deploy deploy
	_t=$(($(date +%s) - _t0))
	rc_is 2 "$1: exit 2"
	like "$(err)" "$3" "$1: the error says so"
	ok "$1: one line" [ "$(wc -l <"$T/err")" -eq 1 ]
	ok "$1: within the deadline (${_t}s)" [ "$_t" -le 25 ]
	is "$(current_link)" "releases/$B" "$1: current unchanged"
	is "$(releases)" "$rels" "$1: nothing built"
	is "$(git --git-dir="$ROOT/repo" rev-parse -q --verify refs/heads/main)" \
	    "$head" "$1: nothing fetched"
}
broken "a socket that never answers" hang \
    "*program app: supervisord at unix://$T/hang.sock did not answer supervisor.getAPIVersion within 10s*"
broken "a refused socket" stale \
    "*program app: cannot reach supervisord at unix://$T/stale.sock: Connection refused*"
broken "an answer cut short" half \
    "*program app: supervisord at unix://$T/half.sock cut its answer to supervisor.getAPIVersion short*"
broken "an answer that is no XML-RPC" junk \
    "*program app: supervisord at unix://$T/junk.sock gave a malformed answer to supervisor.getAPIVersion*"
ok "B still runs" app_runs_from "$B"

# ---- the supervisor key names the real one
write_conf "supervisor = unix://$T/supervisor.sock" "-supervisorctl"
run_deploy deploy
rc_is 0 "supervisor = the real socket, no supervisorctl key: deploy C"
ok "C runs" app_runs_from "$C"

# supervisorctl's other spellings of -c FILE name the same server
for _c in "-c$SVCONF" "--configuration=$SVCONF"; do
	write_conf "supervisorctl = supervisorctl $_c"
	run_deploy status
	like "$(out)" "*program: app RUNNING pid * (releases/$C, current)*" \
	    "supervisorctl = supervisorctl $_c: status reads the program"
done

# ---- the program dies after its restart confirmed it, and supervisord
# starts it again while the check runs (issue 29 item 9): the check passes
# on the new process, but the release is switched back
: >"$T/killonce"
write_conf "check = sh -c 'if rm $T/killonce 2>/dev/null; then kill \$(cut -d\" \" -f1 $APPSTATE); sleep 3; fi'"
D=$(new_commit fourth)
run_deploy deploy
rc_is 4 "a program that died after it was confirmed: switched back, exit 4"
ok "the check ran its kill" absent "$T/killonce"
like "$(err)" "*check FAILED*program app restarted or stopped after it was confirmed RUNNING*" \
    "it says the program did not stay up after its confirmation"
is "$(current_link)" "releases/$C" "current is C again"
ok "C runs" app_runs_from "$C"

# ---- a supervisord that asks for a username and password, on its socket
# and on a loopback port: deploy sends those of its [supervisorctl]
# section, or supervisorctl's -u and -p
A2=$T/auth
mkdir -p "$A2"
HPORT=$(free_port)
# supervisord_head's sections, with a username and password under its
# socket and [supervisorctl]; a loopback port that asks for the same
{
	supervisord_head "$A2/sv.sock" "$A2" |
		sed '/^file=\|^serverurl=/a username=ops\npassword=s3cret'
	cat <<EOF
[inet_http_server]
port=127.0.0.1:$HPORT
username=ops
password=s3cret

[program:app]
command=/bin/sleep 600
autostart=false
EOF
} >"$A2/sv.conf"
supervisord -c "$A2/sv.conf" || bail "the supervisord with a password did not start"
wait_for 15 supervisord_up "$A2/sv.sock" "$A2/supervisord.pid" ||
	bail "the supervisord with a password is not answering"
# authed DESC PATTERN CONF...: deploy status with CONF reads PATTERN
authed() {
	_d=$1 _p=$2
	shift 2
	write_conf "$@"
	run_deploy status
	like "$(out)" "$_p" "$_d"
}
authed "[supervisorctl]'s username and password: status reads the program" \
    "*program: app STOPPED*" "supervisorctl = supervisorctl -c $A2/sv.conf"
authed "-u and -p given to supervisorctl -s: status reads the program" \
    "*program: app STOPPED*" "supervisorctl = supervisorctl -s unix://$A2/sv.sock -u ops -p s3cret"
authed "-p overrides the file's password: refused (HTTP 401)" \
    "*program: unknown (supervisord at unix://$A2/sv.sock refused the username and password (HTTP 401): set username and password under *" \
    "supervisorctl = supervisorctl -c $A2/sv.conf -p wrong"
authed "no username: refused, and status says to set one" \
    "*program: unknown (supervisord at unix://$A2/sv.sock refused to answer without a username and password (HTTP 401)*" \
    "supervisor = unix://$A2/sv.sock"
# over TCP, supervisord's 401 comes with a reset (it closes with the
# request unread): deploy still reads the 401
authed "supervisor = http://…, with [supervisorctl]'s username and password: status reads the program" \
    "*program: app STOPPED*" "supervisor = http://127.0.0.1:$HPORT" \
    "supervisorctl = supervisorctl -c $A2/sv.conf"
authed "over http://, a wrong -p: refused (HTTP 401)" \
    "*program: unknown (supervisord at http://127.0.0.1:$HPORT refused the username and password (HTTP 401): set username and password under *" \
    "supervisor = http://127.0.0.1:$HPORT" "supervisorctl = supervisorctl -c $A2/sv.conf -p wrong"

done_testing
