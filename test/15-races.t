#!/bin/sh
# What a careful review found: current read before a -w wait must be read
# again once the lock is ours (else prune could delete the live release),
# and a `link` path whose parent the repo commits as a symlink must not
# lead the link step out of the release.
. "$(dirname "$0")/lib.sh"

setup_root "keep = 3" "-program" "restart = true"
A=$(sha_of HEAD)
run_deploy deploy
rc_is 0 "deploy A"
B=$(new_commit v2)
run_deploy deploy
rc_is 0 "deploy B"
C=$(new_commit v3)
run_deploy deploy
rc_is 0 "deploy C"
is "$(current_link)" "releases/$C" "current is C"

# Another holder has the lock; prune -w waits; meanwhile current moves to
# A (the oldest), then the lock is freed. Prune must protect A, not C.
"$PY" - "$ROOT" "$A" "$T/holder.ready" >"$T/holder.out" 2>&1 <<'PY' &
import fcntl, os, sys, time
root, sha, ready = sys.argv[1:4]
fd = os.open(os.path.join(root, ".deploy", "lock"), os.O_RDWR)
fcntl.lockf(fd, fcntl.LOCK_EX)
open(ready, "w").close()
time.sleep(2)
tmp = os.path.join(root, "current.race")
os.symlink("releases/" + sha, tmp)
os.rename(tmp, os.path.join(root, "current"))
time.sleep(0.5)
os.close(fd)
PY
holder=$!
wait_for 20 test -f "$T/holder.ready"
run_deploy -k 2 -w 30 prune
wait "$holder"
rc_is 0 "prune -w waited for the lock and ran"
is "$(current_link)" "releases/$A" "current is A, as the other holder left it"
ok "the live release A is still there" test -d "$ROOT/releases/$A"
ok "A's files are intact" test -f "$ROOT/releases/$A/VERSION"

# link through a symlink the repo commits: the outside folder survives
mkdir -p "$T/outside"
echo keep >"$T/outside/config.py"
ln -s "$T/outside" "$APP/instance"
D=$(new_commit v4)
echo "secret" >"$ROOT/shared/config.py"
mkdir -p "$ROOT/shared/instance"
echo "secret" >"$ROOT/shared/instance/config.py"
write_conf "keep = 3" "-program" "restart = true" \
    "link = instance/config.py"
run_deploy deploy
rc_is 1 "a link path through a symlink in the release fails the build"
like "$(err)" "*link*" "the link step is named"
is "$(cat "$T/outside/config.py" 2>/dev/null)" "keep" \
	"the file outside the release is untouched"
ok "nothing was linked outside" test ! -L "$T/outside/config.py"
is "$(current_link)" "releases/$A" "current is unchanged"
ok "no partial release D" test ! -e "$ROOT/releases/$D"

done_testing
