#!/bin/sh
# Output for people: on a terminal (a pseudo-terminal here, from Python's
# pty), a long step's line counts its seconds while it runs and ok/FAILED
# are coloured, except with NO_COLOR; in a pipe the lines stay plain.
. "$(dirname "$0")/lib.sh"

setup_root "test = python check_app.py $TESTRUNS 3"

# on_tty FILE ENV...: runs deploy with stdout and stderr on one pty,
# everything it wrote in FILE, its exit status in $rc
on_tty() {
	_f=$1
	shift
	env "$@" DEPLOY_TEST_MARK="$MARK" timeout -k 5 "$DEPLOY_TEST_LIMIT" \
	    "$PY" - "$_f" "$DEPLOY" -C "$ROOT" deploy <<'EOF'
import os, pty, subprocess, sys
out, argv = sys.argv[1], sys.argv[2:]
m, s = pty.openpty()
p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=s, stderr=s)
os.close(s)
data = b""
while True:
    try:
        b = os.read(m, 4096)
    except OSError:
        break
    if not b:
        break
    data += b
open(out, "wb").write(data)
sys.exit(p.wait())
EOF
	rc=$?
	printf '%s\n' "deploy on a pty ($*)" >"$T/cmd"
	cp "$_f" "$T/out"
	: >"$T/err"
}

# has FILE STRING: FILE holds STRING (escape sequences written as printf's)
has() { grep -qF -- "$(printf "$2")" "$1"; }

on_tty "$T/tty1" TERM=xterm NO_COLOR=
rc_is 0 "a deploy on a terminal exits 0"
ok "the test step's line counts: '[8] test ... 1s'" \
    has "$T/tty1" '\r\033[K[8] test ... 1s'
ok "and '2s' a second later" has "$T/tty1" '\r\033[K[8] test ... 2s'
ok "the counter is wiped before the final line" \
    has "$T/tty1" '\r\033[K[8] test \033[32mok\033[0m '
ok "ok is green on a terminal" has "$T/tty1" '[1] fetch \033[32mok\033[0m'

B=$(new_commit v2)
on_tty "$T/tty2" TERM=xterm NO_COLOR=1
rc_is 0 "with NO_COLOR"
ok "NO_COLOR: still the counter" has "$T/tty2" '\r\033[K[8] test ... 1s'
ok "NO_COLOR: plain ok" has "$T/tty2" '[8] test ok '
grep_nok "NO_COLOR: no colour at all" "$T/tty2" "$(printf '\033')\\[[0-9;]*m"

touch "$APP/FAIL_TESTS"
C=$(new_commit v3)
on_tty "$T/tty3" TERM=xterm NO_COLOR=
rc_is 1 "a failing test step on a terminal exits 1"
ok "FAILED is red" has "$T/tty3" '[8] test \033[1;31mFAILED\033[0m '

# in a pipe: the lines as always, no carriage return, no escape
git -C "$APP" rm -q FAIL_TESTS
D=$(new_commit v4)
run_deploy deploy
rc_is 0 "a deploy in a pipe exits 0"
grep_nok "no carriage return or escape in a pipe" "$T/out" "$(printf '[\r\033]')"
grep_ok "the step line is the stable one" "$T/out" '^\[8\] test ok [0-9]+\.[0-9]{2}s$'
is "$(grep -vcE '^(\[[0-9]+\] [a-z]+ (ok [0-9]+\.[0-9]{2}s|skipped \(.*\))|deploy: .*)$' "$T/out")" 0 \
    "every stdout line is a step line or a 'deploy:' message"

done_testing
