#!/bin/sh
# The whole tree: an app with a submodule given as ../lib.git and a 200 KB
# Git LFS file, on local bare remotes. The release holds the submodule at
# its pinned commit and the LFS file byte for byte, no .git anywhere, also
# with GIT_CONFIG_NOSYSTEM=1 (no filter.lfs from /etc/gitconfig); a
# code-only redeploy fetches nothing for the submodule; a moved pointer
# deploys the new content and the old release keeps the old; a missing
# submodule commit and a missing LFS object each fail (exit 1) naming the
# path, nothing switched; without git-lfs on PATH preflight refuses
# (exit 2) before anything is fetched; prune drops an unused mirror.
. "$(dirname "$0")/lib.sh"

# tree_app: $T/lib.git and $T/app.git (bare), the app's commit with the
# submodule at vendor/lib and model.bin in LFS; REMOTE is app.git
make_app
git init -q --bare "$T/lib.git" && git init -q --bare "$T/app.git" ||
	bail "git init failed"
git -C "$T/lib.git" symbolic-ref HEAD refs/heads/main
git -C "$T/app.git" symbolic-ref HEAD refs/heads/main
git init -q "$T/lib" && git -C "$T/lib" symbolic-ref HEAD refs/heads/main
lib_commit() {
	printf 'LIB = %s\n' "$1" >"$T/lib/libmod.py"
	git -C "$T/lib" add -A && git -C "$T/lib" commit -q -m "$1" &&
		git -C "$T/lib" rev-parse HEAD
}
L1=$(lib_commit 1) && git -C "$T/lib" push -q "$T/lib.git" main ||
	bail "lib push failed"
# point vendor/lib at a commit: the gitlink is written straight to the index
pin() {
	git -C "$APP" update-index --add --cacheinfo "160000,$1,vendor/lib"
}
push_app() {
	git -C "$APP" push -q "file://$T/app.git" main >"$T/push.err" 2>&1 ||
		{ cat "$T/push.err" >&2; bail "app push failed"; }
}
git -C "$APP" lfs install --local >/dev/null || bail "git lfs install failed"
git -C "$APP" lfs track '*.bin' >/dev/null || bail "git lfs track failed"
head -c 204800 /dev/urandom >"$APP/model.bin"
printf '[submodule "lib"]\n\tpath = vendor/lib\n\turl = ../lib.git\n' \
	>"$APP/.gitmodules"
mkdir -p "$APP/vendor/lib"
pin "$L1"
A=$(new_commit tree1) && push_app
git -C "$T/app.git" cat-file -p "$A:model.bin" |
    grep -q '^version https://git-lfs.github.com/spec/v1' ||
	bail "model.bin is not an LFS pointer in the commit"
ls "$T"/app.git/lfs/objects/*/*/* >/dev/null 2>&1 ||
	bail "the LFS object did not reach app.git"
REMOTE=$T/app.git
setup_root "-program"	# no restart: this is about the tree
R=$ROOT/releases

run_deploy deploy
rc_is 0 "deploy of the commit with a submodule and an LFS file"
is "$(current_sha)" "$A" "current is it"
is "$(cat "$R/$A/vendor/lib/libmod.py" 2>&1)" "LIB = 1" \
	"the submodule's file is in the release at the pinned commit"
ok "the LFS file is in the release byte for byte" cmp -s "$APP/model.bin" \
	"$R/$A/model.bin"
is "$(find "$R" -name .git | wc -l)" 0 "no .git anywhere in the release"
is "$(ls "$ROOT/modules")" "$(ls "$ROOT/modules" | grep -E '^[0-9a-f]{16}\.git$')" \
	"the submodule's mirror is ROOT/modules/HASH.git"
is "$(ls "$ROOT/modules" | wc -l)" 1 "one mirror"
grep_ok "the submodule got a step of its own" "$T/out" \
	'^\[[0-9]+\] submodule ok [0-9.]+s \(vendor/lib\)$'

# code only, with no system or global git config at all
B=$(new_commit tree2) && push_app
GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null
export GIT_CONFIG_NOSYSTEM GIT_CONFIG_GLOBAL
run_deploy deploy
rc_is 0 "a code-only deploy with GIT_CONFIG_NOSYSTEM=1"
ok "the LFS file is its content there too" cmp -s "$APP/model.bin" \
	"$R/$B/model.bin"
is "$(cat "$R/$B/vendor/lib/libmod.py" 2>&1)" "LIB = 1" "and the submodule's"
grep_nok "the submodule's pointer did not move: nothing fetched for it" \
	"$ROOT/.deploy/logs/$B.log" 'modules/.*(fetch|clone)|clone .*lib\.git'

# the pointer moves
L2=$(lib_commit 2) && git -C "$T/lib" push -q "$T/lib.git" main ||
	bail "lib push failed"
pin "$L2"
C=$(new_commit tree3) && push_app
run_deploy deploy
rc_is 0 "deploy of a moved submodule pointer"
is "$(cat "$R/$C/vendor/lib/libmod.py" 2>&1)" "LIB = 2" \
	"the new release has the submodule's new content"
is "$(cat "$R/$A/vendor/lib/libmod.py" 2>&1)" "LIB = 1" \
	"the old release keeps the old"
unset GIT_CONFIG_NOSYSTEM GIT_CONFIG_GLOBAL

# a pinned commit its remote does not have
L3=$(lib_commit 3)	# never pushed
pin "$L3"
D=$(new_commit tree4) && push_app
run_deploy deploy
rc_is 1 "a submodule commit missing from its remote fails with exit 1"
like "$(err)" "*vendor/lib*$L3*$T/lib.git*" \
	"the error names the path, the commit and the URL"
is "$(current_sha)" "$C" "nothing was switched"
ok "no release is left for it" absent "$R/$D"

# an LFS object missing from the remote
pin "$L2"
head -c 1000 /dev/urandom >"$APP/other.bin"
E=$(new_commit tree5) && push_app
oid=$(git -C "$T/app.git" cat-file -p "$E:other.bin" | sed -n 's/^oid sha256://p')
rm -f "$T/app.git/lfs/objects/$(echo "$oid" | cut -c1-2)/$(echo "$oid" | cut -c3-4)/$oid"
run_deploy deploy
rc_is 1 "an LFS object missing from the remote fails with exit 1"
like "$(err)" "*LFS file other.bin*" "the error names the file"
is "$(current_sha)" "$C" "nothing was switched"
ok "no release is left for it" absent "$R/$E"

# without git-lfs: refused before anything is fetched
git -C "$APP" rm -q other.bin
F=$(new_commit tree6) && push_app
mkdir "$T/nolfs"
for p in git python3; do
	ln -s "$(command -v "$p")" "$T/nolfs/$p"
done
before=$(git --git-dir="$ROOT/repo" rev-parse main)
cp "$ROOT/shared/deploy.conf" "$T/conf.saved"
echo 'lfs = yes' >>"$ROOT/shared/deploy.conf"
run env PATH="$T/nolfs" "$DEPLOY" -C "$ROOT" deploy
rc_is 2 "lfs = yes without git-lfs on PATH, exit 2"
like "$(err)" "*git-lfs*" "the error names the package"
is "$(git --git-dir="$ROOT/repo" rev-parse main)" "$before" \
	"nothing was fetched"
is "$(current_sha)" "$C" "nothing was switched"
# no lfs line (the default): only a commit with LFS files needs git-lfs
cat "$T/conf.saved" >"$ROOT/shared/deploy.conf"
run env PATH="$T/nolfs" "$DEPLOY" -C "$ROOT" deploy
rc_is 2 "by default, a commit with LFS files and no git-lfs: exit 2"
like "$(err)" "*git-lfs*" "the error names the package"
is "$(current_sha)" "$C" "nothing was switched"
ok "no release is left for it" absent "$R/$F"

# submodules gone from the app: prune drops the mirror no release needs
git -C "$APP" rm -q --cached vendor/lib .gitmodules
rm -f "$APP/.gitmodules"
G=$(new_commit tree7) && push_app
run_deploy deploy -k 2
rc_is 0 "deploy of the app without its submodule"
run_deploy prune -k 2
is "$(ls "$ROOT/modules" | wc -l)" 1 "the mirror stays while a kept release needs it"
H=$(new_commit tree8) && push_app
run_deploy deploy -k 2
rc_is 0 "one more deploy"
is "$(ls "$ROOT/modules" | wc -l)" 0 "then prune removes it"

done_testing
