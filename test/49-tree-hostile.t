#!/bin/sh
# Hostile .gitmodules, each refused (exit 1) with a clear error, nothing
# switched, nothing run: a path ../x, a path .deploy, a path through .git
# (lib/.git, .GIT/x), a name with '..', a
# URL starting with '-' (--upload-pack=...), ext:: and fd:: URLs. A
# gitlink .gitmodules does not name, a cycle;
# submodules = no and lfs = no refuse a commit that has them; a relative
# URL that climbs above the repo; a file that is still an LFS pointer (no
# filter routes it) fails the build naming it; a file deploy cannot open
# (a lease held on it) is not taken for one.
. "$(dirname "$0")/lib.sh"

make_app
git init -q --bare "$T/lib.git" || bail "git init failed"
git -C "$T/lib.git" symbolic-ref HEAD refs/heads/main
git init -q "$T/lib" && git -C "$T/lib" symbolic-ref HEAD refs/heads/main
echo 'LIB = 1' >"$T/lib/libmod.py"
git -C "$T/lib" add -A && git -C "$T/lib" commit -q -m l1 &&
	git -C "$T/lib" push -q "$T/lib.git" main || bail "lib failed"
L1=$(git -C "$T/lib" rev-parse HEAD)
setup_root "-program"
A=$(sha_of HEAD)
run_deploy deploy
rc_is 0 "the plain app deploys"

# hostile N "what" GITMODULES [PATH]: a commit with a gitlink at PATH
# (default vendor/lib) and that .gitmodules is refused
hostile() {
	_what=$2
	_path=${4:-vendor/lib}
	printf '%s' "$3" >"$APP/.gitmodules"
	mkdir -p "$APP/$_path"
	git -C "$APP" update-index --add --cacheinfo "160000,$L1,$_path" ||
		bail "update-index failed"
	_c=$(new_commit "hostile $1")
	run_deploy deploy
	rc_is 1 "$_what: refused with exit 1"
	like "$(err)" "*$5*" "$_what: the error says why"
	is "$(current_sha)" "$A" "$_what: nothing switched"
	ok "$_what: no release left" absent "$ROOT/releases/$_c"
	ok "$_what: nothing ran" absent "$T/pwned"
	git -C "$APP" rm -q --cached "$_path"
	rmdir "$APP/$_path" 2>/dev/null
	rm -f "$APP/.gitmodules"
}
ok_sub='[submodule "lib"]
	path = vendor/lib
	url = ../lib.git
'
hostile 1 "a path ../x" "$ok_sub[submodule \"x\"]
	path = ../x
	url = ../lib.git
" "" "'x' has a path that is missing, absolute, holds '..'*refused"
hostile 2 "a path .deploy" "[submodule \"d\"]
	path = .deploy
	url = ../lib.git
" .deploy "'d' has a path through .git, .deploy or .venv; refused"
hostile 2g "a path through .git (lib/.git)" "$ok_sub[submodule \"g\"]
	path = lib/.git
	url = ../lib.git
" "" "'g' has a path through .git, .deploy or .venv; refused"
hostile 2G "a path through .GIT (.GIT/x)" "$ok_sub[submodule \"G\"]
	path = .GIT/x
	url = ../lib.git
" "" "'G' has a path through .git, .deploy or .venv; refused"
hostile 3 "a name with .." "[submodule \"../../evil\"]
	path = vendor/lib
	url = ../lib.git
" "" "'../../evil' has a name that is empty or holds '..'; refused"
hostile 4 "a URL --upload-pack=..." "[submodule \"lib\"]
	path = vendor/lib
	url = --upload-pack=touch $T/pwned
" "" "'lib' has a url that is missing or starts with '-'; refused"
hostile 5 "an ext:: URL" "[submodule \"lib\"]
	path = vendor/lib
	url = ext::sh -c touch% $T/pwned
" "" "'lib' has a url naming a transport helper (ext::, fd::); refused"
hostile 6 "an fd:: URL" "[submodule \"lib\"]
	path = vendor/lib
	url = fd::3
" "" "'lib' has a url naming a transport helper"
hostile 7 "a gitlink .gitmodules does not name" "[submodule \"o\"]
	path = other
	url = ../lib.git
" "" "vendor/lib is a submodule that .gitmodules does not name"
hostile 8 "a relative URL above the repo" "[submodule \"lib\"]
	path = vendor/lib
	url = ../../../../../../../../../../../../lib.git
" "" "vendor/lib: url '../../../../*' climbs above"

# a cycle: lib holds app itself as a submodule
git -C "$T/lib" update-index --add --cacheinfo "160000,$A,app"
printf '[submodule "app"]\n\tpath = app\n\turl = %s\n' "$APP" >"$T/lib/.gitmodules"
git -C "$T/lib" add .gitmodules && git -C "$T/lib" commit -q -m cycle &&
	git -C "$T/lib" push -q "$T/lib.git" main || bail "lib cycle failed"
L1=$(git -C "$T/lib" rev-parse HEAD)
hostile 9 "a cycle" "$ok_sub" "" "vendor/lib/app: $APP is also a repository around it (a cycle)"

# submodules = no, lfs = no
write_conf "-program" "submodules = no"
hostile 10 "submodules = no" "$ok_sub" "" "vendor/lib is a submodule, and submodules = no"
write_conf "-program" "lfs = no"
echo '*.bin filter=lfs diff=lfs merge=lfs -text' >"$APP/.gitattributes"
C=$(new_commit lfsno)
run_deploy deploy
rc_is 1 "lfs = no: a commit routing paths through LFS is refused"
like "$(err)" "*stores files in Git LFS, and lfs = no*" "lfs = no: the error says why"
is "$(current_sha)" "$A" "lfs = no: nothing switched"

# a pointer with no filter=lfs routing it: the release would hold the
# pointer, so the build fails naming the file
write_conf "-program"
git -C "$APP" rm -q --cached .gitattributes
rm -f "$APP/.gitattributes"
printf 'version https://git-lfs.github.com/spec/v1\noid sha256:%s\nsize 12345\n' \
	"$(printf '%064d' 7)" >"$APP/weights.dat"
P=$(new_commit pointer)
run_deploy deploy
rc_is 1 "a file that is still an LFS pointer fails the build"
like "$(err)" "*weights.dat is an LFS pointer, not its content*" \
	"the error names the file"
is "$(current_sha)" "$A" "pointer: nothing switched"
ok "pointer: no release left" absent "$ROOT/releases/$P"
ok "no index is left in .deploy" absent "$ROOT/.deploy/index"

# a file deploy cannot open while it looks for LFS pointers is not a
# pointer: the build goes on. Here another process holds a write lease on
# it (taken by a smudge filter of a later file, in the mirror's config),
# so deploy's open, which never waits, fails; the holder lets go then.
git -C "$APP" rm -q --cached weights.dat
rm -f "$APP/weights.dat"
cat >"$T/lease.py" <<'EOF'
import fcntl, os, signal, sys, time
path, mark = sys.argv[1:]
data = sys.stdin.buffer.read()
if os.fork() == 0:
    os.setsid()
    null = os.open(os.devnull, os.O_RDWR)
    for i in 0, 1, 2:
        os.dup2(null, i)        # git waits for the filter's output to end
    try:
        fd = os.open(path, os.O_RDWR)
        fcntl.fcntl(fd, getattr(fcntl, "F_SETLEASE", 1024), fcntl.F_WRLCK)
    except OSError:
        open(mark + ".none", "w").close()   # no leases on this file system
        os._exit(1)
    def let_go(*_):
        fcntl.fcntl(fd, getattr(fcntl, "F_SETLEASE", 1024), fcntl.F_UNLCK)
        open(mark + ".broken", "w").close()
        os._exit(0)
    signal.signal(signal.SIGIO, let_go)
    open(mark, "w").close()
    time.sleep(60)
    os._exit(1)
while not os.path.exists(mark) and not os.path.exists(mark + ".none"):
    time.sleep(0.01)
sys.stdout.buffer.write(data)
EOF
head -c 300 /dev/zero | tr '\0' 'x' >"$APP/leased.txt"
echo slow >"$APP/zzz.slow"
echo 'zzz.slow filter=slow' >"$APP/.gitattributes"
L=$(new_commit leased)
git --git-dir="$ROOT/repo" config filter.slow.smudge \
    "$PY $T/lease.py $ROOT/releases/$L/leased.txt $T/leased"
run_deploy deploy
if [ -e "$T/leased.none" ]; then
	for _i in 1 2 3 4; do
		pass "# SKIP no file leases on this file system"
	done
else
	ok "the smudge filter took the lease" test -e "$T/leased"
	ok "deploy's open broke it" test -e "$T/leased.broken"
	rc_is 0 "a file deploy cannot open is not taken for a pointer: exit 0"
	is "$(current_sha)" "$L" "and the release is switched to"
fi
git --git-dir="$ROOT/repo" config --unset filter.slow.smudge

done_testing
