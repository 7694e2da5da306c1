#!/bin/sh
# Releases holding hostile trees: symlinks to a folder outside the root, to
# a file outside, to / and up the tree; symlink loops; a 5,000-level deep
# tree; folders and files of mode 000; a bind mount of an outside folder.
# Prune removes each such release and nothing outside it: the outside
# folders keep every file.
. "$(dirname "$0")/lib.sh"
. "$TESTDIR/hostile.sh"

setup_root "keep = 10"
R=$ROOT/releases
run_deploy deploy
rc_is 0 "deploy V1"
V1=$(sha_of HEAD)
for v in V2 V3 V4 V5 Y Z; do
	s=$(new_commit "$v")
	run_deploy deploy
	rc_is 0 "deploy $v"
	eval "$v=$s"
done
is "$(current_link)" "releases/$Z" "Z is current"
is "$(list_mark "$Y")" rollback "Y is the rollback target"

# folders outside the root, each with files at two levels
for o in outside outside-mnt; do
	mkdir -p "$T/$o/sub/subsub"
	echo precious >"$T/$o/file.txt"
	echo precious >"$T/$o/sub/deep.txt"
	echo precious >"$T/$o/sub/subsub/deeper.txt"
	chmod 0700 "$T/$o/sub"
done
echo precious >"$T/lonely-file.txt"
outside_state() {
	tree_listing "$T/outside"
	cat "$T/outside/file.txt" "$T/outside/sub/deep.txt" \
	    "$T/outside/sub/subsub/deeper.txt" "$T/lonely-file.txt"
	tree_listing "$ROOT/shared"
	tree_listing "$R/$Y"
	tree_listing "$R/$Z"
	tree_listing "$ROOT/venvs" | grep -v '\.pyc '
}

# V1: symlinks out of the release
ln -s "$T/outside" "$R/$V1/to-outside"
ln -s "$T/outside/sub" "$R/$V1/to-outside-sub"
ln -s "$T/lonely-file.txt" "$R/$V1/to-a-file"
ln -s / "$R/$V1/to-root"
ln -s ../.. "$R/$V1/up-up"
ln -s "../$Z" "$R/$V1/to-current"
mkdir "$R/$V1/nested"
ln -s "$T/outside" "$R/$V1/nested/to-outside"
ln -s ../../../shared "$R/$V1/nested/to-shared"
rm -rf "$R/$V1/.venv"
ln -s "$T/outside" "$R/$V1/.venv"

# V2: symlink loops
ln -s b "$R/$V2/a"
ln -s a "$R/$V2/b"
ln -s self "$R/$V2/self"
ln -s . "$R/$V2/dot"
ln -s .. "$R/$V2/dotdot"
mkdir "$R/$V2/d"
ln -s ../d "$R/$V2/d/back"

# V3: a 5,000-level deep tree, with files and a link outside at the bottom
"$PY" - "$R/$V3" "$T/outside" <<'EOF' || bail "could not build the deep tree"
import os, sys
os.chdir(sys.argv[1])
for i in range(5000):
    os.mkdir("d")
    os.chdir("d")
    if i % 1000 == 0:
        open("f%d" % i, "w").write("x\n")
open("bottom.txt", "w").write("bottom\n")
os.symlink(sys.argv[2], "to-outside")
EOF
depth=$("$PY" -c '
import os, sys
os.chdir(sys.argv[1]); n = 0
while os.path.isdir("d"):
    os.chdir("d"); n += 1
print(n)' "$R/$V3")
is "$depth" 5000 "V3 holds a tree 5,000 folders deep"

# V4: mode 000 folders and files, and a link outside inside one
mkdir -p "$R/$V4/locked/inner"
echo secret >"$R/$V4/locked/inner/file"
echo secret >"$R/$V4/locked/file"
ln -s "$T/outside" "$R/$V4/locked/inner/to-outside"
chmod 000 "$R/$V4/locked/inner/file" "$R/$V4/locked/inner" "$R/$V4/locked"
chmod 000 "$R/$V4/app.py"
chmod 000 "$R/$V4"

# V5: an outside folder bind-mounted into the release (root only)
mounted=
if [ "$(id -u)" -eq 0 ] && mkdir "$R/$V5/mnt" &&
    mount --bind "$T/outside-mnt" "$R/$V5/mnt" 2>/dev/null; then
	mounted=yes
	at_exit "umount -l '$R/$V5/mnt' 2>/dev/null"
fi

outside_state >"$T/outside.before"
tree_listing "$T/outside-mnt" >"$T/mnt.before"
pid=$(app_pid)

# ---- prune
run_deploy prune -k 2
rc_is 0 "prune -k 2 exits 0"
for v in V1 V2 V3 V4; do
	eval "s=\$$v"
	ok "prune removed $v" absent "$R/$s"
done
is "$(current_link)" "releases/$Z" "current unchanged"
ok "Y (rollback target) and Z (current) are kept" [ -d "$R/$Y" -a -d "$R/$Z" ]
is "$(app_pid)" "$pid" "the app was not restarted"
outside_state >"$T/outside.after"
if cmp -s "$T/outside.before" "$T/outside.after"; then
	pass "every file outside the pruned releases V1-V4 is intact"
else
	fail "every file outside the pruned releases V1-V4 is intact"
	diff "$T/outside.before" "$T/outside.after" | head -n 40 | sed 's/^/#   /' >&2
fi
ok "/ is intact" [ -x /bin/sh -a -d /etc -a -d /usr/bin ]
ok "the lonely outside file is intact" [ "$(cat "$T/lonely-file.txt")" = precious ]
ok "shared/deploy.conf is intact" [ -f "$ROOT/shared/deploy.conf" ]

if [ -n "$mounted" ]; then
	tree_listing "$T/outside-mnt" >"$T/mnt.after"
	if cmp -s "$T/mnt.before" "$T/mnt.after"; then
		pass "prune did not remove the bind-mounted folder's files"
	else
		fail "prune did not remove the bind-mounted folder's files"
		diff "$T/mnt.before" "$T/mnt.after" | sed 's/^/#   /' >&2
	fi
	ok "the mount point in V5 is left" mountpoint -q "$R/$V5/mnt"
	umount "$R/$V5/mnt" || umount -l "$R/$V5/mnt"
	run_deploy prune -k 2
	rc_is 0 "prune after the mount is gone exits 0"
	ok "it removes the rest of V5, as the warning promised" absent "$R/$V5"
	ok "the folder that was mounted there still exists" [ -d "$T/outside-mnt" ]
else
	ok "V5 without hostile content is removed too" absent "$R/$V5"
	for i in 1 2 3 4; do
		echo "ok $((_n + 1)) # SKIP no bind mount here (needs root)"
		_n=$((_n + 1))
	done
fi

run_deploy list
rc_is 0 "list after prune exits 0"
is "$(awk '{ print $1 }' "$T/out" | tr '\n' ' ')" "$Z $Y " \
	"list shows only Z and Y"

done_testing
