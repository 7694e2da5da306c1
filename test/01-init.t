#!/bin/sh
# init: a fresh root gets releases/, shared/, a bare mirror in repo/ and a
# deploy.conf that works as written; init again loses nothing and says what
# was there; init URL BRANCH deploys that branch.
. "$(dirname "$0")/lib.sh"

[ -x "$DEPLOY" ] || bail "no deploy binary at $DEPLOY (run make)"
make_app
A=$(sha_of HEAD)

mkdir -p "$ROOT"
run_deploy init "$REMOTE"
rc_is 0 "init on an empty folder exits 0"
ok "releases/ created" real_dir "$ROOT/releases"
ok "shared/ created" real_dir "$ROOT/shared"
run git -C "$ROOT/repo" rev-parse --is-bare-repository
is "$(out)" true "repo/ is a bare repository"
ok "the mirror holds the remote's commit" git -C "$ROOT/repo" cat-file -e "$A^{commit}"
ok "shared/deploy.conf created" [ -f "$ROOT/shared/deploy.conf" ]
grep_ok "deploy.conf names the repo" "$ROOT/shared/deploy.conf" \
	"^[[:space:]]*repo[[:space:]]*=[[:space:]]*$REMOTE[[:space:]]*\$"
mode=$(stat -c %a "$ROOT/shared/deploy.conf")
ok "deploy.conf is writable by its owner only (mode $mode)" \
	[ $((0$mode & 022)) -eq 0 ]
ok "no current yet" absent "$ROOT/current"
is "$(releases)" "" "releases/ is empty"

# the config init wrote is usable as it is (no program: no restart step)
run_deploy deploy
rc_is 0 "a deploy with init's own deploy.conf exits 0"
is "$(current_link)" "releases/$A" "and current points to the remote's head"

# ---- init again on a root in use: nothing lost
start_supervisord
write_conf "keep = 4"
echo "# admin's note" >>"$ROOT/shared/deploy.conf"
echo "s3cret" >"$ROOT/shared/secret.txt"
B=$(new_commit v2)
run_deploy deploy
rc_is 0 "deploy of a second commit"
cp "$ROOT/shared/deploy.conf" "$T/conf.before"
before=$(tree_listing "$ROOT/releases"; tree_listing "$ROOT/shared")
pid=$(app_pid)

run_deploy init "$REMOTE"
rc_is 0 "init again on an existing root exits 0"
ok "deploy.conf is untouched" cmp -s "$T/conf.before" "$ROOT/shared/deploy.conf"
after=$(tree_listing "$ROOT/releases"; tree_listing "$ROOT/shared")
is "$after" "$before" "releases/ and shared/ are untouched"
is "$(current_link)" "releases/$B" "current still points to the same release"
is "$(cat "$ROOT/shared/secret.txt")" s3cret "shared files are kept"
is "$(app_pid)" "$pid" "the app was not restarted"
ok "repo/ is still a working mirror" git -C "$ROOT/repo" cat-file -e "$B^{commit}"
said=$(cat "$T/out" "$T/err")
case $said in
*[Ee]xist* | *[Aa]lready*) pass "init says things were already there" ;;
*) fail "init says things were already there" ;;
esac
like "$said" "*deploy.conf*" "it names deploy.conf"
like "$said" "*repo*" "it names the mirror"

run_deploy init "$T/some/other/url"
ok "init with another URL does not rewrite deploy.conf" \
	cmp -s "$T/conf.before" "$ROOT/shared/deploy.conf"
is "$(current_link)" "releases/$B" "nor touch current"

# ---- init URL BRANCH: the branch is what a plain deploy takes
git -C "$APP" branch stable "$A"
ROOT=$T/root2
mkdir -p "$ROOT"
run_deploy init "$REMOTE" stable
rc_is 0 "init URL BRANCH exits 0"
run_deploy deploy
rc_is 0 "deploy with that config"
is "$(current_link)" "releases/$A" "deployed the branch given to init, not the default branch"

# ---- usage errors
ROOT=$T/root3
mkdir -p "$ROOT"
run_deploy init
rc_is 2 "init without URL exits 2"
is "$(ls -A "$ROOT")" "" "and creates nothing"

done_testing
