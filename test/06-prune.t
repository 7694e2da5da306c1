#!/bin/sh
# Prune keeps the `keep` newest releases that were live, never current nor
# the rollback target nor a prepared release newer than current, never
# anything in releases/ it did not create, and never follows a symlink out
# of a release it deletes.
. "$(dirname "$0")/lib.sh"

# sorted NAME...: the names sorted and space-separated, like releases()
sorted() {
	printf '%s\n' "$@" | sort | tr '\n' ' ' | sed 's/ $//'
}

setup_root "keep = 2" "link = config.ini"
echo "db=prod" >"$ROOT/shared/config.ini"

A=$(sha_of HEAD)
run_deploy deploy
rc_is 0 "deploy A"
for v in v2 v3 v4; do
	new_commit $v >/dev/null
	run_deploy deploy
	rc_is 0 "deploy $v"
done
B=$(sha_of HEAD~2)
C=$(sha_of HEAD~1)
D=$(sha_of HEAD)

# ---- keep = 2 after four deploys
is "$(releases)" "$(sorted "$C" "$D")" "keep=2 after 4 deploys: exactly current and the rollback target remain"
is "$(current_link)" "releases/$D" "current is the newest"
is "$(list_mark "$C")" rollback "the other is the rollback target"
ok "the app runs from current" app_runs_from "$D"
is "$(cat "$ROOT/shared/config.ini")" "db=prod" "a linked shared file survives prune"
ok "the log of a pruned release goes with it" absent "$ROOT/.deploy/logs/$A.log"
ok "the log of a kept release stays" [ -f "$ROOT/.deploy/logs/$D.log" ]

# ---- current, rollback target and prepared releases newer than current
# are protected: E, F, G prepared, then F activated (activate prunes
# nothing): E never live and older than current, G prepared after it
write_conf "keep = 10" "link = config.ini"
for v in v5 v6 v7; do
	new_commit $v >/dev/null
	run_deploy prepare
	rc_is 0 "prepare $v"
done
E=$(sha_of HEAD~2)
F=$(sha_of HEAD~1)
G=$(sha_of HEAD)
run_deploy activate "$F"
rc_is 0 "activate F"
is "$(current_link)" "releases/$F" "current is F"
is "$(list_mark "$D")" rollback "D is the rollback target"

# things deploy did not create
echo "do not delete" >"$ROOT/releases/notes.txt"
mkdir "$ROOT/releases/old-site"
echo "<h1>old</h1>" >"$ROOT/releases/old-site/index.html"
ln -s / "$ROOT/releases/rootlink"
ln -s ../shared "$ROOT/releases/shared-link"
# a release to be pruned that links out of itself
mkdir "$T/canary"
echo keep >"$T/canary/keep.txt"
ln -s "$T/canary" "$ROOT/releases/$E/escape-dir"
ln -s "$T/canary/keep.txt" "$ROOT/releases/$E/escape-file"

run_deploy list
rc_is 0 "list with foreign entries exits 0"
for f in notes.txt old-site rootlink shared-link; do
	grep_ok "list shows $f as foreign" "$T/out" "^$f  +foreign  +-  +- *\$"
done

pid=$(app_pid)
run_deploy -k 2 prune
rc_is 0 "prune -k 2 exits 0"
is "$(releases)" \
	"$(sorted "$D" "$F" "$G" notes.txt old-site rootlink shared-link)" \
	"prune removed E (never live, older than current) and C (beyond keep 2): kept current, rollback target, G (prepared after current) and foreign entries"
is "$(current_link)" "releases/$F" "current unchanged"
is "$(app_pid)" "$pid" "prune does not restart the app"
is "$(cat "$T/canary/keep.txt" 2>/dev/null)" keep "a symlink inside the pruned release was not followed"
is "$(cat "$ROOT/releases/notes.txt")" "do not delete" "a foreign file is kept"
ok "a foreign folder is kept with its content" [ -f "$ROOT/releases/old-site/index.html" ]
is "$(readlink "$ROOT/releases/rootlink")" / "a foreign symlink to / is kept"
ok "and / was not emptied" [ -x /bin/sh ]
is "$(cat "$ROOT/shared/config.ini")" "db=prod" "shared/ is intact"

before=$(tree_listing "$ROOT/releases")
run_deploy -k 2 prune
rc_is 0 "prune with nothing to do exits 0"
is "$(tree_listing "$ROOT/releases")" "$before" "and removes nothing"

run_deploy -k 1 prune
rc_is 2 "prune -k 1 exits 2 (keep is at least 2)"
is "$(tree_listing "$ROOT/releases")" "$before" "and removes nothing"

run_deploy rollback
rc_is 0 "rollback after prune still finds its target"
is "$(current_link)" "releases/$D" "current is D"
ok "the app runs from D" app_runs_from "$D"

done_testing
