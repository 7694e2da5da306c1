#!/bin/sh
# Edges of the files deploy trusts:
# - the config and the envfile must be regular files, not symbolic links,
#   owned by us or root and writable by no one else: exit 2, nothing built;
# - a symlinked requirements file is followed while it stays in the
#   release; one that leads out or to nothing fails the pip step;
# - a shared venv is reused only for requirements that name no local path
#   (--find-links DIR does), and the key covers the whole file, not its
#   first MiB.
. "$(dirname "$0")/lib.sh"

dep_of() {
	"$ROOT/releases/$1/.venv/bin/python" -c "import $2; print($2.VERSION)" 2>&1
}

setup_root
A=$(sha_of HEAD)
run_deploy deploy
rc_is 0 "first deploy"
B=$(new_commit v2)

# refused DESC PATTERN: the deploy of B was refused, and nothing changed
refused() {
	run_deploy deploy
	rc_is 2 "$1: exit 2"
	like "$(err)" "$2" "$1: one line naming the file"
	is "$(err | wc -l | tr -d ' ')" 1 "$1: one line"
	is "$(releases)" "$A" "$1: nothing built"
	is "$(current_link)" "releases/$A" "$1: current unchanged"
}

# ---- the config may not be a symbolic link
mv "$ROOT/shared/deploy.conf" "$ROOT/shared/real.conf"
ln -s real.conf "$ROOT/shared/deploy.conf"
refused "config a symlink" "deploy: $ROOT/shared/deploy.conf: *symbolic link*"
rm "$ROOT/shared/deploy.conf"
mv "$ROOT/shared/real.conf" "$ROOT/shared/deploy.conf"

# ---- the envfile is trusted as the config is
write_conf "envfile = app.env"
ENVF=$ROOT/shared/app.env
echo "GREETING=hi" >"$ENVF"
chmod 0666 "$ENVF"
refused "envfile mode 0666" "deploy: $ENVF: writable by group or others*"
chmod 0620 "$ENVF"
refused "envfile mode 0620" "deploy: $ENVF: writable by group or others*"
chmod 0600 "$ENVF"
mv "$ENVF" "$ROOT/shared/real.env"
ln -s real.env "$ENVF"
refused "envfile a symlink" "deploy: $ENVF: *symbolic link*"
rm "$ENVF"
mv "$ROOT/shared/real.env" "$ENVF"
chown 65534 "$ENVF"
refused "envfile owned by nobody" "deploy: $ENVF: owned by uid 65534*"
chown 0 "$ENVF"
run_deploy deploy
rc_is 0 "with a 0600 envfile of ours the deploy works"
is "$(current_link)" "releases/$B" "current is B"
write_conf

# ---- a symlinked requirements file
mkdir -p "$APP/requirements"
git -C "$APP" mv requirements.txt requirements/prod.txt
ln -s requirements/prod.txt "$APP/requirements.txt"
S1=$(new_commit s1)
run_deploy deploy
rc_is 0 "requirements.txt -> requirements/prod.txt: deploy exits 0"
grep_nok "pip was not skipped" "$T/out" 'pip skipped \(no '
is "$(dep_of "$S1" appdep)" 1.0 "the release's venv has appdep"
is "$(current_link)" "releases/$S1" "current is S1"

echo "appdep==1.0" >"$T/outside.txt"
ln -sf "$T/outside.txt" "$APP/requirements.txt"
S2=$(new_commit s2)
run_deploy deploy
rc_is 1 "a requirements link out of the release: exit 1"
like "$(err)" "*pip FAILED*requirements.txt*out of the release*" "the pip step fails naming it"
is "$(current_link)" "releases/$S1" "current unchanged"
ok "the release was removed" absent "$ROOT/releases/$S2"

ln -sf requirements/nothing.txt "$APP/requirements.txt"
S3=$(new_commit s3)
run_deploy deploy
rc_is 1 "a dangling requirements link: exit 1"
like "$(err)" "*pip FAILED*requirements.txt*" "the pip step fails naming it"
is "$(current_link)" "releases/$S1" "current unchanged"
ok "the release was removed" absent "$ROOT/releases/$S3"
rm "$APP/requirements.txt"
git -C "$APP" mv requirements/prod.txt requirements.txt

# ---- --find-links DIR names a local folder: never shared
mkdir -p "$APP/wheels"
mkwheel "$APP/wheels" mylib 1.0 >/dev/null
printf 'appdep==1.0\n--find-links wheels\nmylib\n' >"$APP/requirements.txt"
F1=$(new_commit f1)
run_deploy deploy
rc_is 0 "deploy with --find-links wheels"
is "$(dep_of "$F1" mylib)" 1.0 "it has mylib 1.0"
mkwheel "$APP/wheels" mylib 1.1 >/dev/null
F2=$(new_commit f2)
run_deploy deploy
rc_is 0 "deploy with mylib 1.1 added to wheels/"
grep_nok "its venv was not reused" "$T/out" 'venv skipped'
is "$(dep_of "$F2" mylib)" 1.1 "it has mylib 1.1"
ok "its .venv is a folder of its own" real_dir "$ROOT/releases/$F2/.venv"

# ---- a requirements file larger than 1 MiB, changed past its first MiB
awk 'BEGIN { for (i = 0; i < 20000; i++)
	printf "# %05d padding padding padding padding padding padding\n", i }' \
    >"$APP/requirements.txt"
echo "appdep==1.0" >>"$APP/requirements.txt"
L1=$(new_commit l1)
run_deploy deploy
rc_is 0 "deploy with 1.1 MiB of requirements"
is "$(dep_of "$L1" appdep)" 1.0 "it has appdep 1.0"
mkwheel "$T/wheels" appdep 2.0 >/dev/null
sed -i 's/^appdep==1.0$/appdep==2.0/' "$APP/requirements.txt"
L2=$(new_commit l2)
run_deploy deploy
rc_is 0 "deploy with the pin changed past 1 MiB"
grep_nok "the venv was not reused" "$T/out" 'venv skipped'
is "$(dep_of "$L2" appdep)" 2.0 "it has appdep 2.0"

done_testing
