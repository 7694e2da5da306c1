#!/bin/sh
# Finding the root: -C, else $DEPLOY_ROOT, else the parent of the `shared`
# folder the binary was started from, else exit 2.  And a `current` that is
# a real directory (the blog post's layout) is refused with a way out.
. "$(dirname "$0")/lib.sh"

setup_root
A=$(sha_of HEAD)
cp "$DEPLOY" "$ROOT/shared/deploy"

# the way CI runs it: ssh host /path/ROOT/shared/deploy, no arguments
cd / || exit 1
run timeout -k 5 "$DEPLOY_TEST_LIMIT" "$ROOT/shared/deploy"
rc_is 0 "ROOT/shared/deploy with no arguments and no DEPLOY_ROOT deploys"
is "$(current_link)" "releases/$A" "in the root above shared/"
ok "the app runs from the release" app_runs_from "$A"

run "$ROOT/shared/deploy" status
rc_is 0 "ROOT/shared/deploy status"
grep_ok "reports that root's current release" "$T/out" "^current: $A "

cd "$ROOT/shared" || exit 1
run ./deploy status
rc_is 0 "./deploy status from inside shared/"
grep_ok "finds the same root" "$T/out" "^current: $A "

# (started through a symlink to shared/ under another name: whether the
# link's name or its target counts is the implementation's choice; not
# tested)

# DEPLOY_ROOT
cd "$T" || exit 1
run env DEPLOY_ROOT="$ROOT" "$DEPLOY" status
rc_is 0 "DEPLOY_ROOT selects the root"
grep_ok "and status reports it" "$T/out" "^current: $A "

run env DEPLOY_ROOT=/nonexistent/root "$DEPLOY" -C "$ROOT" status
rc_is 0 "-C wins over DEPLOY_ROOT"
grep_ok "and status reports -C's root" "$T/out" "^current: $A "

# none of them: exit 2, even from inside the root
cd "$ROOT" || exit 1
run "$DEPLOY" status
rc_is 2 "no -C, no DEPLOY_ROOT, binary not in shared/: exit 2"
run "$DEPLOY"
rc_is 2 "and a deploy that way exits 2 too"
is "$(current_link)" "releases/$A" "without changing anything"
cd "$T" || exit 1

# ---- current as a real directory
B=$(new_commit v2)
ROOT=$T/old-style
mkdir -p "$ROOT"
run_deploy init "$REMOTE"
rc_is 0 "init a root for the blog post's layout"
write_conf -program
mkdir "$ROOT/current"
echo "live" >"$ROOT/current/index.html"
before=$(tree_listing "$ROOT/current"; tree_listing "$ROOT/releases")
run_deploy deploy
ok "a deploy onto a current that is a real directory is refused (exit $rc)" \
	test "$rc" = 2 -o "$rc" = 1
like "$(err)" "*current*" "the message is about current"
case $(err) in
*[Mm]igrat* | *"mv "* | *[Mm]ove* | *[Rr]ename*)
	pass "and says how to migrate (move/rename it)" ;;
*)	fail "and says how to migrate (move/rename it)" ;;
esac
ok "current is still that directory" real_dir "$ROOT/current"
is "$(cat "$ROOT/current/index.html")" live "with its content"
is "$(tree_listing "$ROOT/current"; tree_listing "$ROOT/releases")" "$before" \
	"nothing under current/ or releases/ changed"

done_testing
