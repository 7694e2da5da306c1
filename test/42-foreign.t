#!/bin/sh
# releases/ holding entries deploy did not create: a file, a symlink to /,
# a non-hex folder, a folder named like a sha, a sha-named symlink to a
# folder outside the root, a FIFO, a dangling link, a link loop, a mode
# 000 folder, a name with spaces.  They are listed as foreign, never
# deleted, never activated, and prune (on its own or as a deploy's last
# step) neither crashes nor touches them.
. "$(dirname "$0")/lib.sh"
. "$TESTDIR/hostile.sh"

setup_root "keep = 10"
A=$(sha_of HEAD)
run_deploy deploy
rc_is 0 "deploy A"
B=$(new_commit v2)
run_deploy deploy
rc_is 0 "deploy B"
C=$(new_commit v3)
run_deploy deploy
rc_is 0 "deploy C"

R=$ROOT/releases
mkdir -p "$T/outside/sub"
echo precious >"$T/outside/file.txt"
echo precious >"$T/outside/sub/deep.txt"
HEX40=$(od -An -N20 -tx1 /dev/urandom | tr -d ' \n')
HEX64=$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')
LINKHEX=$(od -An -N20 -tx1 /dev/urandom | tr -d ' \n')
UPHEX=$(od -An -N20 -tx1 /dev/urandom | tr -d ' \n' | tr a-f A-F)

echo "do not delete" >"$R/notes.txt"
ln -s / "$R/rootlink"
mkdir "$R/old-site"
echo "<h1>old</h1>" >"$R/old-site/index.html"
mkdir "$R/$HEX40"
echo "planted by hand" >"$R/$HEX40/README"
echo "a file named like a sha" >"$R/$HEX64"
ln -s "$T/outside" "$R/$LINKHEX"
mkdir "$R/$UPHEX"
echo upper >"$R/$UPHEX/file"
mkfifo "$R/pipe"
ln -s /nonexistent/nowhere "$R/dangling"
ln -s loop "$R/loop"
mkdir "$R/locked"
echo secret >"$R/locked/file"
chmod 000 "$R/locked"
mkdir "$R/my backup"
echo backup >"$R/my backup/file"
FOREIGN="notes.txt rootlink old-site $HEX40 $HEX64 $LINKHEX $UPHEX pipe dangling loop locked"

# foreign_state: every foreign entry and what it holds, and the outside
# folder a foreign link points to
foreign_state() {
	for f in $FOREIGN "my backup"; do
		find "$R/$f" -printf '%p %y %m %s %T@ %l\n' 2>/dev/null
	done
	tree_listing "$T/outside"
	cat "$T/outside/file.txt" "$T/outside/sub/deep.txt"
	cat "$R/notes.txt" "$R/old-site/index.html" "$R/$HEX40/README" \
	    "$R/$HEX64" "$R/$UPHEX/file" "$R/locked/file" "$R/my backup/file"
}
foreign_state >"$T/foreign.before"
foreign_kept() {
	foreign_state >"$T/foreign.after"
	if cmp -s "$T/foreign.before" "$T/foreign.after"; then
		pass "$1: every foreign entry is intact"
	else
		fail "$1: every foreign entry is intact"
		diff "$T/foreign.before" "$T/foreign.after" | sed 's/^/#   /' >&2
	fi
	ok "$1: / is intact" [ -x /bin/sh -a -d /etc ]
}

# ---- list
run_deploy list
rc_is 0 "list with foreign entries exits 0"
for f in $FOREIGN; do
	grep_ok "list shows $(printf %.16s "$f") as foreign" "$T/out" \
		"^$f +foreign +- +- *\$"
done
grep_ok "list shows 'my backup' as foreign" "$T/out" "^my backup +foreign +- +- *\$"
for s in $A $B $C; do
	grep_ok "list still shows $(printf %.7s "$s") complete" "$T/out" "^$s +complete "
done
run_deploy status
rc_is 0 "status with foreign entries exits 0"
grep_ok "status still names current" "$T/out" "^current: $C "
foreign_kept "list and status"

# ---- a foreign entry is never a release to activate
snapshot
for f in "$HEX40" "$HEX64" "$LINKHEX"; do
	run_deploy activate "$f"
	refused "activate the foreign $(printf %.12s "$f")" 2 "*$f*"
	run_deploy rollback "$f"
	refused "rollback to the foreign $(printf %.12s "$f")" 2 "*$f*"
done
run_deploy activate "$(echo "$UPHEX" | tr A-F a-f)"
refused "activate the lowercase name of the upper-case foreign folder" 2 "*REV*"

# ---- prune on its own
run_deploy prune -k 2
rc_is 0 "prune -k 2 with foreign entries exits 0"
is "$(stat -c %a "$R/locked" 2>/dev/null)" 0 "the mode 000 foreign folder keeps its mode"
ok "prune removed the oldest release A" absent "$R/$A"
ok "and kept B (rollback target) and C (current)" [ -d "$R/$B" -a -d "$R/$C" ]
is "$(current_link)" "releases/$C" "current unchanged"
foreign_kept "prune -k 2"

run_deploy prune -k 2
rc_is 0 "prune again: nothing of ours to remove, exit 0"
foreign_kept "the second prune"

# ---- prune as a deploy's last step
D=$(new_commit v4)
run_deploy -k 2 deploy
rc_is 0 "deploy D with -k 2 (prune runs as its last step)"
is "$(current_link)" "releases/$D" "current is D"
ok "its prune removed B" absent "$R/$B"
grep_ok "the prune step reported ok" "$T/out" "^\[[0-9]+\] prune ok"
foreign_kept "deploy with prune"

# ---- a planted folder named like the next commit's sha
E=$(new_commit v5)
mkdir "$R/$E"
echo "planted where E would go" >"$R/$E/planted.txt"
snapshot
run_deploy deploy
ok "deploy of E, whose release folder someone else made, is refused (exit $rc)" \
	test "$rc" = 1 -o "$rc" = 2
one_error "the error is one line" "*$E*"
is "$(current_link)" "releases/$D" "current unchanged: not switched to the planted folder"
is "$(cat "$R/$E/planted.txt" 2>/dev/null)" "planted where E would go" \
	"the planted folder is intact"
run_deploy prune -k 2
rc_is 0 "prune after that exits 0"
is "$(cat "$R/$E/planted.txt" 2>/dev/null)" "planted where E would go" \
	"the planted folder survives the next run too"
run_deploy list
grep_ok "and is listed as foreign" "$T/out" "^$E +foreign +- +- *\$"
run_deploy activate "$E"
rc_is 2 "and is never activated"
is "$(current_link)" "releases/$D" "current still D"
foreign_kept "a refused deploy"
chmod 755 "$R/locked"

done_testing
