#!/bin/sh
# Issue 29: state kept exact.
# 10. after a switch back the removal of .deploy/pending is fsynced, so a
#     power cut cannot make the next run switch back (and notify) again;
#  5. rebuilding a failed release never leaves previous naming a missing
#     folder, even when the rebuild fails;
# 11. resume removes only the pause it read: a pause written meanwhile stays;
# 12. the pause audit line names current; status --json tells "no program
#     configured" (null) from "unknown"; 0098c49's pending record,
#     finished, names previous.
# Without a program (a check that fails on demand), so it runs quickly.
. "$(dirname "$0")/lib.sh"

setup_root -program "check = test ! -e $T/badcheck" "check_timeout = 5"
A=$(sha_of HEAD)
run_deploy deploy
rc_is 0 "deploy A"
prev() { readlink "$ROOT/previous" 2>/dev/null; }

# ---- 12. the pause audit line names the release current
run_deploy pause "the old pause"
rc_is 0 "pause: exit 0"
ok "the pause audit line's revision is current" "$PY" -c '
import json, sys
last = open(sys.argv[1]).read().splitlines()[-1]
d = json.loads(last)
assert d["event"] == "pause" and d["revision"] == sys.argv[2], last' \
    "$ROOT/.deploy/audit" "$A"

# ---- 11. a pause written while resume runs survives it: resume's
# unlinkat and rename are slowed down (strace), and the new pause is
# written once resume has read the old one
strace -qq -o "$T/resume.trace" -e trace=openat,unlinkat,rename,renameat,renameat2 \
    -e inject=unlinkat,rename,renameat,renameat2:delay_enter=1500000 \
    "$DEPLOY" -C "$ROOT" resume >"$T/resume.out" 2>&1 &
rpid=$!
read_pause() { grep -q '"pause[^"]*", O_RDONLY.* = [0-9]' "$T/resume.trace" 2>/dev/null; }
wait_for 60 read_pause || diag "resume never read the pause"
run_deploy pause "the new pause"
wait "$rpid"
is "$?" 0 "resume: exit 0"
grep_ok "resume ended the old pause" "$T/resume.out" "resumed \(was paused by "
grep_ok "the new pause is still there" "$ROOT/.deploy/pause" "^reason the new pause\$"
run_deploy status
grep_ok "status says deploy is paused by the new pause" "$T/out" "^paused: by .*: the new pause\$"
ok "the resume's audit line names the pause it ended" "$PY" -c '
import json, sys
r = [json.loads(l) for l in open(sys.argv[1]) if "\"resume\"" in l]
assert r and r[0]["detail"] == "the old pause", r' "$ROOT/.deploy/audit"
run_deploy resume
rc_is 0 "resume again: exit 0"
ok "and now no pause is left" absent "$ROOT/.deploy/pause"
run_deploy resume
rc_is 0 "resume when not paused: exit 0"
grep_ok "it says so" "$T/out" "not paused"

# ---- 10. a switch back: the removal of pending is fsynced
B=$(new_commit vB)
: >"$T/badcheck"
run timeout -k 5 "$DEPLOY_TEST_LIMIT" strace -qq -o "$T/back.trace" \
    -e trace=unlinkat,fsync "$DEPLOY" -C "$ROOT" deploy
rc_is 4 "B fails its check: switched back, exit 4"
is "$(current_sha)" "$A" "current is A again"
is "$(prev)" "releases/$B" "previous is the failed release"
ok "pending is removed, then its folder fsynced" "$PY" -c '
import re, sys
lines = open(sys.argv[1]).read().splitlines()
i = [n for n, l in enumerate(lines)
     if re.match(r"unlinkat\(\d+, \"pending\", 0\)\s+= 0", l)]
assert i, "no unlinkat of pending"
fd = re.match(r"unlinkat\((\d+),", lines[i[-1]]).group(1)
# right after it, before anything else is written or run
assert lines[i[-1] + 1].startswith("fsync(%s)" % fd), lines[i[-1]:]' \
    "$T/back.trace"

# ---- 5. the failed release rebuilt, and its rebuild fails: previous
# never names a missing folder
rm -f "$T/badcheck"
: >"$T/badtest"
write_conf -program "check = test ! -e $T/badcheck" "check_timeout = 5" \
    "test = test ! -e $T/badtest"
run_deploy deploy "$B"	# a failed head is retried by name
rc_is 1 "the rebuild of B fails its tests: exit 1"
grep_ok "it said it rebuilds the failed release" "$T/out" \
    "release ${B%????????????????????????????} failed after an earlier switch: rebuilding it"
grep_ok "the rebuild got to its tests, and failed there" "$T/err" \
    "deploy of ${B%????????????????????????????} failed before the switch"
is "$(current_sha)" "$A" "current is still A"
ok "previous does not name a missing folder" \
    sh -c '[ ! -L "$1" ] || [ -d "$1" ]' sh "$ROOT/previous"
rm -f "$T/badtest"
run_deploy deploy "$B"
rc_is 0 "B rebuilt and deployed"
is "$(prev)" "releases/$A" "previous is A"

# ---- 12. a pending record of 0098c49 ("SHA PREV", and no previous link),
# finished by this binary, names previous
rm "$ROOT/previous"
printf '%s %s\n' "$B" "$A" >"$ROOT/.deploy/pending"
run_deploy deploy
rc_is 0 "a cron deploy finishes 0098c49's pending switch: exit 0"
grep_ok "it says it finished it" "$T/out" "stopped after switching to ${B%????????????????????????????}"
is "$(prev)" "releases/$A" "previous is the release that record left"

# ---- 12. status --json: no program (null) is not an unknown one
run_deploy status --json
like "$(out)" '*"program": null*' "status --json without a program: null"
write_conf
chmod 666 "$ROOT/shared/deploy.conf"
run_deploy status --json
like "$(out)" '*"program": {"name": null, "processes": null, "unknown": "*not trusted*' \
    "a config that cannot be trusted: the program is unknown, and why"
chmod 644 "$ROOT/shared/deploy.conf"
done_testing
