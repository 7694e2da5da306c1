#!/bin/sh
# A deploy SIGKILLed while it builds leaves an incomplete release; the next
# command that takes the lock and does not prune (activate, rollback)
# removes it by itself, says so, and leaves the complete ones alone.
. "$(dirname "$0")/lib.sh"

make_app
setup_root
A=$(new_commit v1a)
run_deploy deploy
rc_is 0 "v1 deployed"
B=$(new_commit v2)
run_deploy deploy
rc_is 0 "v2 deployed"

write_conf "test = python check_app.py $TESTRUNS 60"
C=$(new_commit v3)
rm -f "$TESTRUNS.started"
bg_deploy killed deploy
ok "the test step of v3 starts" wait_for 60 test -s "$TESTRUNS.started"
kill -9 "$bgpid"
bg_wait
ok "killed mid-build: releases/v3 is there, incomplete" test -d "$ROOT/releases/$C"
is "$(list_state "$C")" incomplete "list says incomplete"

write_conf
run_deploy rollback
rc_is 0 "rollback after the kill: exit 0"
like "$(out)" "*removed incomplete release $C*" "it says it removed the incomplete release"
ok "and it is gone" absent "$ROOT/releases/$C"
is "$(current_link)" "releases/$A" "rollback went to v1"
ok "v2 is kept" test -d "$ROOT/releases/$B"
no_marked_procs "nothing of the killed deploy runs" killed

rm -f "$TESTRUNS.started"
write_conf "test = python check_app.py $TESTRUNS 60"
bg_deploy killed2 deploy "$C"
ok "the test step of v3 starts again" wait_for 60 test -s "$TESTRUNS.started"
kill -9 "$bgpid"
bg_wait
write_conf
run_deploy activate "$B"
rc_is 0 "activate after the kill: exit 0"
ok "the incomplete release is gone after activate too" absent "$ROOT/releases/$C"

# ---- a signal that comes before the switch (here, while cleanup removes a
# large incomplete release) leaves current as it was: no switch at all
X=0123456789abcdef0123456789abcdef01234567
"$PY" -c '
import os, sys
d = sys.argv[1]
for i in range(300):
    sub = os.path.join(d, "d%03d" % i)
    os.makedirs(sub)
    for j in range(400):
        open(os.path.join(sub, "f%03d" % j), "w").close()
' "$ROOT/releases/$X" || bail "could not plant a large release"
echo "$(date +%s) build $X" >>"$ROOT/.deploy/history"
is "$(list_state "$X")" incomplete "a large incomplete release is planted"
before=$(current_link)
bg_deploy sigclean rollback
ok "the rollback starts removing it" wait_for 30 test -e "$ROOT/.deploy/lock"
sleep 0.3
kill -TERM "$bgpid"
bg_wait
is "$bgrc" 143 "SIGTERM before the switch: exit 143"
[ "$bgrc" = 143 ] || show_bg
is "$(current_link)" "$before" "current unchanged: it never switched"
ok "nothing is left pending" absent "$ROOT/.deploy/pending"

done_testing
