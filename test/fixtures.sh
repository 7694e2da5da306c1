# fixtures.sh -- sourced by lib.sh: the fixtures that many files build the
# same way, built once a run under `make test` (DEPLOY_TEST_CACHE).
#
# POSIX sh only, like lib.sh.

# With DEPLOY_TEST_CACHE set (`make test` sets it), a fixture that many
# files build the same way is built once a run into that folder, under a
# name made from what it is built from (a hash of its arguments and of the
# files that build it), and each file gets a copy in its own $T: nothing is
# shared between runs, and no test writes into the cache.

# cached NAME BUILD [ARGS...]: sets CACHED to the cache's folder NAME,
# running `BUILD DIR ARGS...` (quiet on stdout: a bail there is TAP) to
# fill it the first time.  The file that makes the folder .building-NAME
# builds it; the others (prove starts three files at once) wait for it
# rather than build the same thing beside it, and build their own only
# when that builder fails or takes past 300 s.  It is built under a temp
# name and renamed: of two builds, one rename wins, the other is dropped.
cached() {
	CACHED=$DEPLOY_TEST_CACHE/$1
	[ -d "$CACHED" ] && return 0
	_cl=$DEPLOY_TEST_CACHE/.building-$1
	if ! mkdir "$_cl" 2>/dev/null; then
		_cw=0
		while [ -d "$_cl" ] && [ ! -d "$CACHED" ] && [ $_cw -lt 1500 ]; do
			sleep 0.2
			_cw=$((_cw + 1))
		done
		[ -d "$CACHED" ] && return 0
		_cl=
	fi
	_ct=$(mktemp -d "$DEPLOY_TEST_CACHE/.new.XXXXXX") || bail "cache: mktemp failed"
	_cn=$1
	_cb=$2
	shift 2
	"$_cb" "$_ct" "$@" || {
		rm -rf "$_ct"
		[ -z "$_cl" ] || rmdir "$_cl"
		bail "cache: building $_cn failed"
	}
	mv -T "$_ct" "$CACHED" 2>/dev/null || rm -rf "$_ct"
	[ -z "$_cl" ] || rmdir "$_cl"
	[ -d "$CACHED" ] || bail "cache: no $CACHED"
}

# virtualenv's own data (the pip, setuptools and wheel it copies into
# each venv), built once a run with pip's bytecode compiled (hash-checked,
# so the copies in each venv stay valid): the first pip run in a new venv
# no longer compiles pip, about half its CPU.  The venvs are made as on a
# server, by copying; only their pip starts faster.  Every file of the run
# points virtualenv there; virtualenv takes its locks in it, as it does in
# ~/.local/share/virtualenv, and only reads the rest.
_build_virtualenv_data() {
	VIRTUALENV_OVERRIDE_APP_DATA=$1 virtualenv -q -p "$PY" "$1/.seed" \
	    >/dev/null 2>&1 && rm -rf "$1/.seed" &&
		"$PY" -m compileall -q --invalidation-mode checked-hash \
		    "$1"/wheel/*/image/*/*/pip-* \
		    "$1"/wheel/*/image/*/*/setuptools-*/_distutils_hack >/dev/null
}
if [ -n "$DEPLOY_TEST_CACHE" ] && command -v virtualenv >/dev/null 2>&1; then
	cached virtualenv-data _build_virtualenv_data
	VIRTUALENV_OVERRIDE_APP_DATA=$CACHED
	export VIRTUALENV_OVERRIDE_APP_DATA
fi

# The seed venv: the venv a first `deploy` of the test app builds (its
# requirements.txt, the default virtualenv, this python) is built once a
# run, by a real deploy of the app in a root of the cache's own.  A file's
# first `deploy` or `prepare` (run_deploy, bg_deploy) on a root with no
# venvs/ yet gets a copy in venvs/, under the key deploy gave it, when
# nothing that goes into that key differs: so that first deploy reuses it
# ("venv skipped (reused venvs/)") instead of building the same venv
# again, as a second root on a server never would.  Files about building venvs set SEED_VENV=0.
SEED_VENV=${SEED_VENV:-1}
_LIB_PATH=$PATH

# _build_seed DIR APP: DIR/venv, DIR/key, DIR/prefix (the path the venv
# was built at) and DIR/requirements.txt, from a deploy of APP's main
_build_seed() {
	_sr=$1/root
	mkdir -p "$_sr" && "$DEPLOY" -C "$_sr" init "$2" >/dev/null 2>&1 &&
		printf 'repo = %s\ntimeout = 120\n' "$2" \
		    >"$_sr/shared/deploy.conf" &&
		"$DEPLOY" -C "$_sr" -q deploy >/dev/null 2>&1 || return 1
	_sk=$(readlink "$_sr/current/.venv") || return 1
	_sk=${_sk##*/}
	[ -f "$_sr/venvs/$_sk/.deploy-complete" ] || return 1
	echo "$_sk" >"$1/key" &&
		echo "$_sr/venvs/$_sk" >"$1/prefix" &&
		git -C "$2" show main:requirements.txt >"$1/requirements.txt" &&
		mv "$_sr/venvs/$_sk" "$1/venv" && rm -rf "$_sr"
}

# first_build ARGS...: before deploy ARGS on a root with no venvs/ yet:
# `deploy` or `prepare`, with a REF or not, gets the seed venv
first_build() {
	[ -e "$ROOT/venvs" ] && return 0
	case $# in
	1 | 2) ;;
	*) return 0 ;;
	esac
	case $1 in
	deploy | prepare) seed_venv "${2:-main}" ;;
	esac
	return 0
}

# seed_venv REF: the seed venv into $ROOT/venvs, when deploying REF would
# build that very venv (else nothing)
seed_venv() {
	case $1 in
	"" | -* | *[!A-Za-z0-9._/-]*) return 0 ;;
	esac
	[ -n "$DEPLOY_TEST_CACHE" ] && [ "$SEED_VENV" = 1 ] &&
		[ "$PATH" = "$_LIB_PATH" ] && [ -d "$ROOT/releases" ] &&
		[ -f "$ROOT/shared/deploy.conf" ] || return 0
	# a path a sed replacement or a #! line could not hold as it is
	case $ROOT in
	*[!A-Za-z0-9/._-]*) return 0 ;;
	esac
	_sc=$ROOT/shared/deploy.conf
	grep -qxF "repo = $REMOTE" "$_sc" || return 0
	grep -Eq '^[[:space:]]*(virtualenv|requirements|reuse_venv|branch|deps|submodules|lfs)[[:space:]]*=' \
	    "$_sc" && return 0
	git -C "$REMOTE" ls-tree --name-only "$1" 2>/dev/null | grep -Eqx \
	    'poetry.lock|uv.lock|Pipfile.lock|pylock.toml|pyproject.toml|setup.py' &&
		return 0
	cached_app
	_sapp=$CACHED/app
	cached "seed-venv-$(hash_of -- "$TESTDIR/lib.sh" "$TESTDIR/fixtures.sh")" \
	    _build_seed "$_sapp"
	git -C "$REMOTE" show "$1:requirements.txt" 2>/dev/null |
		cmp -s - "$CACHED/requirements.txt" || return 0
	read -r _sk <"$CACHED/key" && read -r _sp <"$CACHED/prefix" || return 0
	mkdir -p "$ROOT/venvs" &&
		cp -R -p "$CACHED/venv" "$ROOT/venvs/$_sk" || bail "seed_venv: cp"
	# the venv's scripts name the path it was built at
	grep -rlF "$_sp" "$ROOT/venvs/$_sk/bin" | while IFS= read -r _sf; do
		sed -i "s|$_sp|$ROOT/venvs/$_sk|g" "$_sf"
	done
}

# hash_of WORD... [-- FILE...]: sha256 of the words and the files' bytes
hash_of() {
	_h=$({
		while [ $# -gt 0 ] && [ "$1" != -- ]; do
			printf '%s\n' "$1"
			shift
		done
		[ $# -gt 0 ] && shift
		[ $# -eq 0 ] || cat -- "$@"
	} | sha256sum)
	echo "${_h%% *}"
}

# mkwheel OUTDIR NAME VERSION [--script CMD] [--requires REQ]...: the wheel
# test/mkwheel.py writes, in OUTDIR; prints its path, as mkwheel.py does
mkwheel() {
	_wo=$1
	shift
	if [ -z "$DEPLOY_TEST_CACHE" ]; then
		"$PY" "$TESTDIR/mkwheel.py" "$_wo" "$@"
		return
	fi
	cached "wheel-$(hash_of "$@" -- "$TESTDIR/mkwheel.py")" \
	    _build_wheel "$@" || return 1
	mkdir -p "$_wo" || return 1
	for _w in "$CACHED"/*.whl; do
		cp "$_w" "$_wo/" && echo "$_wo/${_w##*/}" || return 1
	done
}

_build_wheel() {
	"$PY" "$TESTDIR/mkwheel.py" "$@" >/dev/null
}
