#!/usr/bin/env python3
"""The benchmark behind `make bench` (issue 5): deploy against the blog
post's script, on an app with a realistic dependency set, side by side.

Run by bench/run.  Python 3 standard library only; no network: pip sees
only the wheels that mkwheels.py writes (PIP_NO_INDEX, PIP_FIND_LINKS).

What it builds, under a fresh folder in bench/work/:
  wheels/     ~30 wheels, ~3,000 modules (mkwheels.py)
  app/        the git remote (reached as file://, so both sides transfer
              packs as they would from a server): manage.py (`manage.py
              test` is the test command), an app package, VERSION and
              requirements.txt pinning every wheel
  ours/       a deploy root: `deploy init`, test = python manage.py test,
              keep = 100 (see deploy_bench), no program/restart/check
  post/       a root for bench/post-deploy.sh (the post's script)
  trash/      the post's old releases, moved out untimed (see deploy_bench)
  switch/     a copy of ours/ for the switch figures (venvs hard-linked)
  prune/      a deploy root holding the 50,000-file releases
  logs/       every command's output

Figures, each the median of runs interleaved with its baseline (the order
flips every run, so drift and noise from other work fall on both sides):
  1 failed reads of current/VERSION by a reader looping during N switches
  2 activate / rollback whole-process time (no program, restart or check)
  3 no-op deploy vs `git --git-dir=ROOT/repo fetch` of the same mirror
  4 code-only redeploy vs the post's script
  5 cold deploy (requirements changed, a venv from nothing: a root with
    reuse_venv = no) vs the post's
  5b dependency bump (one pin changed; reuse_venv = yes derives the new
    venv from the current one) vs the post's
  6 prune of a 50,000-file release vs rm -rf of an identical tree
  7 peak RSS of the deploy process itself (VmHWM at exit, under ptrace, so
    git's and pip's memory is not counted)
  4t code-only redeploy of an app with one submodule and one 50 MB Git
    LFS file vs the same app without them (see tree_bench)
  8 failed requests and the longest gap without an answer during a deploy
    under load: docs/zero-downtime.md's fcgi-program group (rolling
    restart), a plain [program] on its own port, and the post's restart
    (see zd_bench)
  3p no-op deploy of a root with program = NAME (a python sleep loop run
    from ROOT/current by a supervisord the bench starts in sv/; deploy
    asks it over its unix socket) vs `git fetch` of the same mirror,
    interleaved as figure 3 (see sv_bench)
  4c user+sys CPU (wait4's rusage: deploy and its children, not the
    program, which is supervisord's) of a code-only redeploy with a
    restart: this binary vs the one built in the run from 65e49d3 (the
    last that ran supervisorctl), one root each, alternating
  4s supervisord's own user+sys CPU during each 4c redeploy, whose
    program takes a second to stop: a waiting stopProcess (supervisorctl
    restart's, and deploy's until now) keeps supervisord polling in a busy
    loop for the whole stop
  10 poetry.lock bump: deploy (deps = poetry) deriving the new venv with
    `poetry install --sync` after one package's version moved in the lock,
    vs a fresh `poetry install` of the same lock into an empty venv; a
    local PEP 503 index (test/pep503.py); skipped without poetry (see
    poetry_bench)
No timing is asserted: it exits non-zero only when something breaks.

Environment:
  DEPLOY              binary under test (default: ../deploy)
  BENCH_RUNS          runs of the heavy figures: 1, 4, 5, 6, 4c, 10
                      (default 5)
  BENCH_FAST_RUNS     runs of the quick ones: 2, 3, 3p (default 30)
  BENCH_SWITCHES      switches per run of figure 1 (default 500)
  BENCH_PRUNE_FILES   files in the pruned release (default 50000)
  BENCH_PRUNE_FILE_SIZE  bytes per file in it (default 0, see prune_bench)
  BENCH_PRUNE_IN_DEPLOYS=1  let figures 4 and 5 delete old releases (see
                      deploy_bench); by default neither side has any to
  BENCH_PATH          PATH for everything run (default: the system's,
                      /usr/local/bin:/usr/bin:/bin, without version-manager
                      shims whose start-up would be timed on both sides)
  BENCH_DIR           where the work folder goes (default: bench/work)
  BENCH_KEEP=1        keep the work folder (it is kept anyway on failure)
  BENCH_ONLY=8        run figure 8 alone
  BENCH_ONLY=9        run figure 9 alone (pages and assets through nginx)
  BENCH_ONLY=5        run figures 4, 5 and 5b alone
  BENCH_ONLY=tree     run figure 4t alone
  BENCH_ONLY=sv       run figures 3p, 4c and 4s alone (supervisord)
  BENCH_ONLY=poetry   run figure 10 alone (poetry)
  BENCH_ONLY=5b       run figure 5b alone (at least 5 runs), with where
                      the time goes on both sides and the pip starts
"""
import ctypes
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(HERE)


def env_int(name, default, low):
	v = os.environ.get(name, "")
	try:
		n = int(v) if v else default
	except ValueError:
		sys.exit("bench: %s=%r is not a number" % (name, v))
	return max(n, low)


DEPLOY = os.path.abspath(os.environ.get("DEPLOY") or os.path.join(TOP, "deploy"))
RUNS = env_int("BENCH_RUNS", 5, 1)
FAST = env_int("BENCH_FAST_RUNS", 30, 3)
SWITCHES = env_int("BENCH_SWITCHES", 500, 2) // 2 * 2
PRUNE_FILES = env_int("BENCH_PRUNE_FILES", 50000, 100)
PRUNE_FILE_SIZE = env_int("BENCH_PRUNE_FILE_SIZE", 0, 0)
PRUNE_IN_DEPLOYS = os.environ.get("BENCH_PRUNE_IN_DEPLOYS") == "1"
ONLY_8 = os.environ.get("BENCH_ONLY") == "8"
ONLY_9 = os.environ.get("BENCH_ONLY") == "9"
ONLY_5 = os.environ.get("BENCH_ONLY") == "5"
ONLY_TREE = os.environ.get("BENCH_ONLY") == "tree"
ONLY_5B = os.environ.get("BENCH_ONLY") == "5b"
ONLY_SV = os.environ.get("BENCH_ONLY") == "sv"
ONLY_POETRY = os.environ.get("BENCH_ONLY") == "poetry"
SYSPATH = os.environ.get("BENCH_PATH") or \
    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

W = None	# the work folder
ENV = None	# environment of everything the benchmark runs
LOGS = None


class Broken(Exception):
	pass


T0 = time.time()


def say(*a):
	print("[%4.0fs]" % (time.time() - T0), *a, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- running

def run(argv, cwd=None, env=None, log=None, check=True, capture=False):
	"""Runs argv; output to LOGS/log (or captured).  Returns (rc, out)."""
	logf = open(os.path.join(LOGS, log or "misc.log"), "ab")
	logf.write(("$ %s\n" % " ".join(argv)).encode())
	logf.flush()
	try:
		p = subprocess.run(argv, cwd=cwd, env=env or ENV,
		    stdin=subprocess.DEVNULL,
		    stdout=subprocess.PIPE if capture else logf,
		    stderr=logf)
	finally:
		logf.close()
	out = p.stdout.decode(errors="replace") if capture else ""
	if check and p.returncode != 0:
		raise Broken("%s exited %d (see %s)\n%s" % (" ".join(argv),
		    p.returncode, os.path.join(LOGS, log or "misc.log"),
		    tail(os.path.join(LOGS, log or "misc.log"))))
	return p.returncode, out


def tail(path, n=15):
	try:
		with open(path, errors="replace") as f:
			return "".join("  | " + l for l in f.readlines()[-n:])
	except OSError:
		return ""


def timed(argv, cwd=None, env=None, log=None, expect=0):
	"""Wall time of one whole process (seconds), stdout+stderr to a log."""
	path = os.path.join(LOGS, log or "misc.log")
	with open(path, "ab") as logf:
		logf.write(("$ %s\n" % " ".join(argv)).encode())
		logf.flush()
		t0 = time.perf_counter()
		p = subprocess.Popen(argv, cwd=cwd, env=env or ENV,
		    stdin=subprocess.DEVNULL, stdout=logf, stderr=logf)
		rc = p.wait()
		t = time.perf_counter() - t0
	if expect is not None and rc != expect:
		raise Broken("%s exited %d, not %d (see %s)\n%s" % (" ".join(argv),
		    rc, expect, path, tail(path)))
	return t


def spawn_timed(argv, env=None, expect=0):
	"""Like timed(), lean: posix_spawn (vfork) and waitpid, output
	dropped.  For the few-millisecond figures."""
	log = os.path.join(LOGS, "quick.log")
	fa = [(os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
	    (os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0),
	    (os.POSIX_SPAWN_OPEN, 2, log, os.O_WRONLY | os.O_APPEND | os.O_CREAT,
		0o644)]
	t0 = time.perf_counter()
	pid = os.posix_spawn(argv[0], argv, env or ENV, file_actions=fa)
	_, st = os.waitpid(pid, 0)
	t = time.perf_counter() - t0
	rc = os.waitstatus_to_exitcode(st)
	if expect is not None and rc != expect:
		raise Broken("%s exited %d, not %d (its stderr: %s)\n%s" % (
		    " ".join(argv), rc, expect, log, tail(log, 5)))
	return t


def deploy(root, *args):
	return [DEPLOY, "-C", root] + list(args)


# ---------------------------------------------------------------- peak RSS

PTRACE_TRACEME, PTRACE_CONT, PTRACE_SETOPTIONS = 0, 7, 0x4200
PTRACE_O_TRACEEXIT, PTRACE_O_EXITKILL, PTRACE_EVENT_EXIT = 0x40, 0x100000, 6


def peak_rss(argv, expect=0):
	"""VmHWM (KiB) of the process argv runs, read when it stops at its
	exit under ptrace (PTRACE_O_TRACEEXIT): memory still mapped, children
	not counted (wait4's ru_maxrss and /usr/bin/time's %M would count the
	largest of git, pip and the tests).  Returns (kib, how)."""
	libc = ctypes.CDLL(None, use_errno=True)
	libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p,
	    ctypes.c_void_p]
	libc.ptrace.restype = ctypes.c_long
	null = os.open(os.devnull, os.O_RDWR)
	pid = os.fork()
	if pid == 0:
		try:
			os.dup2(null, 0)
			os.dup2(null, 1)
			os.dup2(null, 2)
			if libc.ptrace(PTRACE_TRACEME, 0, None, None) != 0:
				os._exit(126)
			os.execve(argv[0], argv, ENV)
		finally:
			os._exit(127)
	os.close(null)
	_, st = os.waitpid(pid, 0)
	if not os.WIFSTOPPED(st):	# could not trace: fall back to wait4
		rc = os.waitstatus_to_exitcode(st)
		if rc != 126:
			raise Broken("%s exited %d under the RSS probe" % (argv, rc))
		pid = os.posix_spawn(argv[0], argv, ENV, file_actions=[
		    (os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0),
		    (os.POSIX_SPAWN_DUP2, 1, 2)])
		_, st, ru = os.wait4(pid, 0)
		return ru.ru_maxrss, "wait4, children included"
	libc.ptrace(PTRACE_SETOPTIONS, pid, None,
	    PTRACE_O_TRACEEXIT | PTRACE_O_EXITKILL)
	libc.ptrace(PTRACE_CONT, pid, None, None)
	hwm = None
	while True:
		_, st = os.waitpid(pid, 0)
		if os.WIFEXITED(st) or os.WIFSIGNALED(st):
			break
		sig = os.WSTOPSIG(st)
		if sig == signal.SIGTRAP and (st >> 16) == PTRACE_EVENT_EXIT:
			with open("/proc/%d/status" % pid) as f:
				for line in f:
					if line.startswith("VmHWM:"):
						hwm = int(line.split()[1])
			sig = 0
		libc.ptrace(PTRACE_CONT, pid, None, ctypes.c_void_p(sig))
	rc = os.waitstatus_to_exitcode(st)
	if expect is not None and rc != expect:
		raise Broken("%s exited %d under the RSS probe" % (" ".join(argv), rc))
	if hwm is None:
		raise Broken("no VmHWM for %s" % " ".join(argv))
	return hwm, "VmHWM at exit"


# ---------------------------------------------------------------- the app

APP_INIT = '''"""exampleapp: the benchmark's web app."""
import os

import bd_webframework
import bd_orm
import bd_restframework
import bd_httpclient
import bd_celery
import bd_settings

from exampleapp import models, views

DEPENDENCIES = (bd_webframework, bd_orm, bd_restframework, bd_httpclient,
                bd_celery, bd_settings)


def version():
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with open(os.path.join(here, "VERSION")) as f:
        return f.read().strip()


def check():
    for dep in DEPENDENCIES:
        assert dep.__version__, dep
    assert views.ROUTES and models.MODELS
    assert version()
'''

MANAGE = '''#!/usr/bin/env python3
"""The app's entry point.  usage: manage.py test"""
import sys


def test():
    import exampleapp
    exampleapp.check()
    print("ok: exampleapp %s, %d dependencies"
          % (exampleapp.version(), len(exampleapp.DEPENDENCIES)))


if __name__ == "__main__":
    if sys.argv[1:] != ["test"]:
        sys.exit("usage: manage.py test")
    test()
'''


def make_app(app, pins):
	os.makedirs(os.path.join(app, "exampleapp", "templates"))
	os.makedirs(os.path.join(app, "exampleapp", "static"))
	files = {
	    "manage.py": MANAGE,
	    "exampleapp/__init__.py": APP_INIT,
	    "exampleapp/models.py": "MODELS = %r\n" % ["Model%d" % i
		for i in range(12)],
	    "exampleapp/views.py": "ROUTES = %r\n" % ["/route/%d" % i
		for i in range(30)],
	    "README.md": "# exampleapp\n\nThe deploy benchmark's app.\n",
	    ".gitignore": "*.pyc\n__pycache__/\n",
	}
	for i in range(40):
		files["exampleapp/mod_%02d.py" % i] = (
		    '"""Part %d of the app."""\n\n\ndef handler_%d(request):\n'
		    '    return {"part": %d, "path": request}\n' % (i, i, i)) * 8
	for i in range(15):
		files["exampleapp/templates/page_%02d.html" % i] = \
		    "<html><body><h1>{{ title }}</h1>%s</body></html>\n" % (
			"<p>{{ body }}</p>" * 20)
	for i in range(5):
		files["exampleapp/static/site_%d.css" % i] = \
		    "body { margin: %dpx; }\n" % i * 50
	files["requirements.txt"] = "".join(p + "\n" for p in pins)
	for path, text in files.items():
		with open(os.path.join(app, path), "w") as f:
			f.write(text)
	os.chmod(os.path.join(app, "manage.py"), 0o755)
	run(["git", "init", "-q", app], log="app.log")
	run(["git", "-C", app, "symbolic-ref", "HEAD", "refs/heads/main"],
	    log="app.log")
	return commit(app, "v0")


def commit(app, version, pins=None):
	"""Writes VERSION (and requirements.txt from pins), commits; the sha."""
	with open(os.path.join(app, "VERSION"), "w") as f:
		f.write(version + "\n")
	if pins is not None:
		with open(os.path.join(app, "requirements.txt"), "w") as f:
			f.write("".join(p + "\n" for p in pins))
	run(["git", "-C", app, "add", "-A"], log="app.log")
	run(["git", "-C", app, "commit", "-q", "-m", version], log="app.log")
	_, out = run(["git", "-C", app, "rev-parse", "HEAD"], log="app.log",
	    capture=True)
	return out.strip()


def pins_with_settings(pins, minor):
	return [("bd-settings==1.0.%d" % minor) if p.startswith("bd-settings==")
	    else p for p in pins]


# ---------------------------------------------------------------- roots

def current_of(root):
	return os.path.basename(os.readlink(os.path.join(root, "current")))


def expect_current(root, sha, who, version):
	got = current_of(root)
	if got != sha:
		raise Broken("%s: current is %s, expected %s" % (who, got, sha))
	with open(os.path.join(root, "current", "VERSION")) as f:
		v = f.read().strip()
	if v != version:
		raise Broken("%s: current/VERSION says %r, expected %r" % (who, v,
		    version))


def setup_ours(root, url, conf):
	run(deploy(root, "init", url), log="ours.log")
	path = os.path.join(root, "shared", "deploy.conf")
	with open(path, "w") as f:
		f.write("# written by bench/bench.py\nrepo = %s\n%s" % (url, conf))
	os.chmod(path, 0o644)


def setup_post(root, url, sha):
	"""The post's layout with a first release, made with the script's
	own commands (its first step needs a current clone to update)."""
	for d in ("releases", "shared"):
		os.makedirs(os.path.join(root, d))
	rel = os.path.join(root, "releases", sha)
	run(["bash", "-c", 'set -e; git clone -q "$1" "$2"; cd "$2"; '
	    'cd ..; virtualenv -q -p python3 "$3"; '
	    'cd "$2"; . bin/activate; pip install -q -r requirements.txt; '
	    'python manage.py test; ln -s "$2" "$4/current"',
	    "setup", url, rel, sha, root], log="post.log")


def post_script(root, url):
	env = dict(ENV, ROOT=root, REPO=url,
	    PIP_CACHE_DIR=os.path.join(W, "post-pip-cache"))
	return ["bash", os.path.join(HERE, "post-deploy.sh")], env


STEP_RE = re.compile(r"^\[\d+\] (\S+) (ok|skipped) ?([0-9.]+)?s?")


def step_times(log, start):
	"""{step: seconds} from deploy's '[N] NAME ok 1.23s' lines after offset."""
	out = {}
	with open(log, errors="replace") as f:
		f.seek(start)
		for line in f:
			m = STEP_RE.match(line)
			if m and m.group(2) == "ok" and m.group(3):
				out[m.group(1)] = out.get(m.group(1), 0) + float(m.group(3))
	return out


# ---------------------------------------------------------------- figures

def med(xs):
	return statistics.median(xs)


def spread(xs, unit=1.0, fmt="%.2f"):
	return ("%s-%s" % (fmt % (min(xs) * unit), fmt % (max(xs) * unit)))


def trim_post(post):
	"""Moves the post's oldest releases beyond the newest 4 (its own `ls
	-t` order) out of releases/, so that its next run finds 5 and deletes
	none; they are deleted with the work folder, untimed."""
	rel = os.path.join(post, "releases")
	names = sorted(os.listdir(rel), key=lambda n: os.lstat(
	    os.path.join(rel, n)).st_mtime, reverse=True)
	cur = current_of(post)
	trash = os.path.join(W, "trash")
	os.makedirs(trash, exist_ok=True)
	for n in names[4:]:
		if n != cur:
			os.rename(os.path.join(rel, n), os.path.join(trash, n))


def deploy_bench(url, app, pins, ours, post, cold, res):
	"""Figures 4, 5 and 5b: per run a code-only commit, then a commit that
	bumps one pin; both sides deploy each, in alternating order.  The bump
	is deployed a third time by cold/, a root with reuse_venv = no, which
	builds its venv from nothing (figure 5) where ours/ derives it from
	the current one (5b).

	Deleting old releases is figure 6's business and is left out of both
	sides here: ours/ has keep = 100, and the post's root is trimmed to 4
	releases (untimed) before each run, so both run their prune step and
	find nothing to delete.  On a disk mounted with `discard` (as this
	benchmark's first machine was) deleting one release's virtualenv
	(~7,000 files, 45 MB) costs 5-25 s of TRIM, more than the deploy
	itself, and it lands unevenly: the post deletes a virtualenv on every
	run, deploy only when a shared one falls out of use.
	BENCH_PRUNE_IN_DEPLOYS=1 keeps keep = 5 on both sides, untrimmed."""
	code_o, code_p, cold_o, cold_p, bump_o, bump_p = [], [], [], [], [], []
	steps_code, steps_cold, steps_bump = [], [], []
	olog = os.path.join(LOGS, "ours.log")
	clog = os.path.join(LOGS, "cold.log")
	pargv, penv = post_script(post, url)
	for r in range(RUNS):
		for kind in ("code", "cold"):
			if kind == "code":
				ver = "code-%d" % r
				sha = commit(app, ver)
			else:
				ver = "cold-%d" % r
				sha = commit(app, ver, pins_with_settings(pins, r + 1))
			if not PRUNE_IN_DEPLOYS:
				trim_post(post)
			off = os.path.getsize(olog)
			coff = os.path.getsize(clog)
			sides = [("ours", lambda: timed(deploy(ours, "deploy"),
			    log="ours.log")),
			    ("post", lambda: timed(pargv, env=penv, log="post.log"))]
			if kind == "cold":
				sides.append(("cold", lambda: timed(deploy(cold,
				    "deploy"), log="cold.log")))
			if r % 2:
				sides.reverse()
			t = {}
			for name, fn in sides:
				t[name] = fn()
			expect_current(ours, sha, "deploy (%s run %d)" % (kind, r), ver)
			expect_current(post, sha, "post's script (%s run %d)" % (kind, r),
			    ver)
			st = step_times(olog, off)
			if kind == "code":
				code_o.append(t["ours"])
				code_p.append(t["post"])
				steps_code.append(st)
			else:
				expect_current(cold, sha, "deploy, reuse_venv = no "
				    "(run %d)" % r, ver)
				bump_o.append(t["ours"])
				bump_p.append(t["post"])
				steps_bump.append(st)
				cold_o.append(t["cold"])
				cold_p.append(t["post"])
				steps_cold.append(step_times(clog, coff))
			say("  run %d %-4s: deploy %6.2fs   post's script %6.2fs%s" % (
			    r, kind, t["ours"], t["post"], "   from nothing %6.2fs" %
			    t["cold"] if "cold" in t else ""))
	res["code"] = (code_o, code_p, steps_code)
	res["cold"] = (cold_o, cold_p, steps_cold)
	res["bump"] = (bump_o, bump_p, steps_bump)


def tree_bench(res):
	"""Figure 4t: a code-only redeploy of an app with one submodule
	(../lib.git) and one 50 MB LFS file, against the same app without
	them, both on bare file:// remotes, no test, alternating order.  What
	the whole tree adds to a redeploy whose submodule pointer did not
	move: the ls-tree, git lfs fetch (nothing to transfer), the 50 MB
	smudged out of the mirror into the new release, the submodule's
	read-tree (no fetch) and the pointer scan."""
	top = os.path.join(W, "tree")
	os.makedirs(top)
	lib, libgit = os.path.join(top, "lib"), os.path.join(top, "lib.git")
	for bare in (libgit, os.path.join(top, "tapp.git"),
	    os.path.join(top, "papp.git")):
		run(["git", "init", "-q", "--bare", bare], log="tree.log")
		run(["git", "--git-dir=" + bare, "symbolic-ref", "HEAD",
		    "refs/heads/main"], log="tree.log")
	os.makedirs(lib)
	with open(os.path.join(lib, "libmod.py"), "w") as f:
		f.write("LIB = 1\n" * 200)
	run(["git", "init", "-q", "-b", "main", lib], log="tree.log")
	run(["git", "-C", lib, "add", "-A"], log="tree.log")
	run(["git", "-C", lib, "commit", "-q", "-m", "lib"], log="tree.log")
	run(["git", "-C", lib, "push", "-q", libgit, "main"], log="tree.log")
	_, lsha = run(["git", "-C", lib, "rev-parse", "HEAD"], log="tree.log",
	    capture=True)
	apps = {}
	for name, whole in (("tapp", True), ("papp", False)):
		app = os.path.join(top, name)
		os.makedirs(app)
		make_app(app, [])
		os.unlink(os.path.join(app, "requirements.txt"))
		if whole:
			run(["git", "-C", app, "lfs", "install", "--local"],
			    log="tree.log")
			run(["git", "-C", app, "lfs", "track", "*.bin"],
			    log="tree.log")
			with open(os.path.join(app, "model.bin"), "wb") as f:
				f.write(os.urandom(50 << 20))
			with open(os.path.join(app, ".gitmodules"), "w") as f:
				f.write('[submodule "lib"]\n\tpath = vendor/lib\n'
				    '\turl = ../lib.git\n')
			os.makedirs(os.path.join(app, "vendor", "lib"))
			run(["git", "-C", app, "update-index", "--add",
			    "--cacheinfo", "160000,%s,vendor/lib" % lsha.strip()],
			    log="tree.log")
		commit(app, "t0")
		url = "file://%s.git" % app
		run(["git", "-C", app, "push", "-q", url, "main"], log="tree.log")
		root = os.path.join(top, name + "-root")
		setup_ours(root, url, "keep = 100\n")
		run(deploy(root, "deploy"), log="tree.log")
		apps[name] = (app, url, root)
	t = {"tapp": [], "papp": []}
	for r in range(RUNS):
		sides = ["tapp", "papp"] if r % 2 == 0 else ["papp", "tapp"]
		for name in sides:
			app, url, root = apps[name]
			ver = "t%d" % (r + 1)
			sha = commit(app, ver)
			run(["git", "-C", app, "push", "-q", url, "main"],
			    log="tree.log")
			t[name].append(timed(deploy(root, "deploy"), log="tree.log"))
			expect_current(root, sha, "%s run %d" % (name, r), ver)
		say("  run %d: with submodule + 50 MB LFS %6.2fs   without %6.2fs" %
		    (r, t["tapp"][-1], t["papp"][-1]))
	res["tree"] = (t["tapp"], t["papp"])


def tree_rows(res, row):
	"""Figure 4t: its row (when row is given) and details."""
	if "tree" not in res:
		return [""]
	to, tp = res["tree"]
	if row is not None:
		row("4t", "code-only redeploy, submodule + 50 MB LFS vs without",
		    "%.2f s" % med(to), "%.2f s" % med(tp), "%.2fx" % (med(to) /
			med(tp)), "-", None)
	return ["", "  4t with a submodule and a 50 MB LFS file %s s, the same "
	    "app without them %s s" % (spread(to), spread(tp))]


PROF_RE = {
    "copy": re.compile(r"^copy: ([0-9.]+)s, of it ([0-9.]+)s finding the old "
	r"path and rewriting (\d+) files$"),
    "parts": re.compile(r"^pinned times: (.*)$"),
    "python": re.compile(r"^pinned: python and pip ([0-9.]+)s$"),
    "start": re.compile(r"^\$ \S+/bin/python (-m pip|-c )"),
}


def deploy_profile(root, sha):
	"""Where a bump's venv and pip steps went, from deploy's log of sha:
	{part: seconds} and the pip starts (python -m pip or the pinned run)."""
	out = {"pip starts": 0}
	path = os.path.join(root, ".deploy", "logs", sha + ".log")
	with open(path, errors="replace") as f:
		for line in f:
			line = line.rstrip("\n")
			if PROF_RE["start"].match(line):
				out["pip starts"] += 1
			m = PROF_RE["copy"].match(line)
			if m:
				out["copy"] = float(m.group(1)) - float(m.group(2))
				out["rewrite"] = float(m.group(2))
			m = PROF_RE["python"].match(line)
			if m:
				out["python+pip total"] = float(m.group(1))
			m = PROF_RE["parts"].match(line)
			if m:
				for part in m.group(1).split(", "):
					k, v = part.split()
					out["pip " + k] = float(v)
	if "pip import" in out and "python+pip total" in out:
		out["python start"] = out["python+pip total"] - sum(v for k, v in
		    out.items() if k.startswith("pip ") and k != "pip starts")
	return out


POST_PS4 = "+ ${EPOCHREALTIME} "


def post_profile(trace):
	"""The post's virtualenv and pip install, from its xtrace."""
	t = []
	for line in trace.splitlines():
		m = re.match(r"^\++ (\d+\.\d+) (.*)$", line)
		if m:
			t.append((float(m.group(1)), m.group(2)))
	out = {}
	for i, (ts, cmd) in enumerate(t[:-1]):
		if cmd.startswith("virtualenv "):
			out["virtualenv"] = t[i + 1][0] - ts
		elif cmd.startswith("pip install"):
			out["pip install"] = t[i + 1][0] - ts
	return out


def bump_bench(url, app, pins, ours, post, res):
	"""Figure 5b alone: RUNS (at least 5) commits that each move one pin,
	deployed by ours/ and the post's script in alternating order, with the
	profile of both: deploy's copy, rewrite and pip parts from its log,
	the post's virtualenv and pip install from its xtrace (PS4 carries
	the time; the script itself is unchanged)."""
	bo, bp, steps, prof_o, prof_p = [], [], [], [], []
	olog = os.path.join(LOGS, "ours.log")
	pargv, penv = post_script(post, url)
	plog = os.path.join(LOGS, "post.log")
	pargv = ["bash", "-c", 'PS4=\'%s\'; set -x; . "$0"' % POST_PS4,
	    pargv[1]]
	for r in range(max(RUNS, 5)):
		ver = "bump-%d" % r
		sha = commit(app, ver, pins_with_settings(pins, r + 1))
		if not PRUNE_IN_DEPLOYS:
			trim_post(post)
		off = os.path.getsize(olog)
		poff = os.path.getsize(plog)
		sides = [("ours", lambda: timed(deploy(ours, "deploy"),
		    log="ours.log")),
		    ("post", lambda: timed(pargv, env=penv, log="post.log"))]
		if r % 2:
			sides.reverse()
		t = {}
		for name, fn in sides:
			t[name] = fn()
		expect_current(ours, sha, "deploy (bump run %d)" % r, ver)
		expect_current(post, sha, "post's script (bump run %d)" % r, ver)
		bo.append(t["ours"])
		bp.append(t["post"])
		steps.append(step_times(olog, off))
		prof_o.append(deploy_profile(ours, sha))
		with open(plog, errors="replace") as f:
			f.seek(poff)
			prof_p.append(post_profile(f.read()))
		say("  run %d bump: deploy %6.2fs   post's script %6.2fs   (%s)" % (
		    r, t["ours"], t["post"], ", ".join("%s %.2f" % (k, v) for k, v
			in prof_o[-1].items())))
	res["bump"] = (bo, bp, steps)
	res["profile"] = (prof_o, prof_p)


def noop_bench(ours, res):
	"""Figure 3: deploy of what is current vs a bare fetch of its mirror."""
	cur = current_of(ours)
	d, g = [], []
	fetch = [shutil.which("git", path=SYSPATH), "--git-dir=%s/repo" % ours,
	    "fetch"]
	dep = deploy(ours, "-q", "deploy")
	for i in range(3):	# warm both
		spawn_timed(dep)
		spawn_timed(fetch)
	for i in range(FAST):
		if i % 2:
			g.append(spawn_timed(fetch))
			d.append(spawn_timed(dep))
		else:
			d.append(spawn_timed(dep))
			g.append(spawn_timed(fetch))
	if current_of(ours) != cur:
		raise Broken("a no-op deploy changed current")
	res["noop"] = (d, g)


READER = r'''
import os, signal, sys
path = sys.argv[1]
stop = []
signal.signal(signal.SIGTERM, lambda *a: stop.append(1))
n = fail = 0
print("ready", flush=True)
while not stop:
    n += 1
    try:
        fd = os.open(path, os.O_RDONLY)
        try:
            if not os.read(fd, 256):
                fail += 1
        finally:
            os.close(fd)
    except OSError:
        fail += 1
print(n, fail, flush=True)
'''

OURS_LOOP = r'''
D=$1 R=$2 A=$3 B=$4 N=$5 i=0
while [ $i -lt $N ]; do
	"$D" -q -C "$R" activate "$A" || exit 1
	"$D" -q -C "$R" activate "$B" || exit 1
	i=$((i + 2))
done
'''

# the post's switch, as its script does it: rm current && ln -s
POST_LOOP = r'''
R=$1 A=$2 B=$3 N=$4 i=0
while [ $i -lt $N ]; do
	rm $R/current && ln -s $R/releases/$A $R/current || exit 1
	rm $R/current && ln -s $R/releases/$B $R/current || exit 1
	i=$((i + 2))
done
'''


def with_reader(root, loop_argv):
	"""Runs the switch loop while a reader opens and reads current/VERSION
	as fast as it can; returns (reads, failed reads, loop seconds)."""
	rd = subprocess.Popen([sys.executable, "-c", READER,
	    os.path.join(root, "current", "VERSION")], env=ENV,
	    stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
	if rd.stdout.readline().strip() != b"ready":
		raise Broken("the reader did not start")
	try:
		t = timed(loop_argv, log="switch.log")
	finally:
		rd.send_signal(signal.SIGTERM)
		out = rd.stdout.read().split()
		rd.wait()
	if len(out) != 2:
		raise Broken("the reader printed %r" % out)
	return int(out[0]), int(out[1]), t


def list_marks(root):
	_, out = run(deploy(root, "list"), capture=True, log="switch.log")
	marks = {}
	for line in out.splitlines():
		f = line.split()
		if len(f) >= 5:
			marks[f[4]] = f[0]
	return marks


def switch_bench(ours, post, res):
	"""Figures 1 and 2, on a copy of ours/ (so its history stays as a
	deploy root's would) and on the post's root."""
	sw = os.path.join(W, "switch")
	os.mkdir(sw)
	for e in os.listdir(ours):	# venvs are never written to again: links
		run(["cp", "-al" if e == "venvs" else "-a", os.path.join(ours, e),
		    sw], log="switch.log")
	marks = list_marks(sw)
	if "current" not in marks or "rollback" not in marks:
		raise Broken("deploy list shows no current and rollback: %r" % marks)
	b, a = marks["current"], marks["rollback"]
	pb = current_of(post)
	pa = sorted(x for x in os.listdir(os.path.join(post, "releases"))
	    if x != pb)[0]
	# figure 2 first, while the history is a deploy root's: rollback
	# (b -> a) and activate b (a -> b), one process each
	act, rb, true = [], [], []
	tru = shutil.which("true", path=SYSPATH) or "/bin/true"
	for i in range(3):
		spawn_timed(deploy(sw, "-q", "rollback"))
		spawn_timed(deploy(sw, "-q", "activate", b))
	for i in range(FAST):
		rb.append(spawn_timed(deploy(sw, "-q", "rollback")))
		if current_of(sw) != a:
			raise Broken("rollback went to %s, not %s" % (current_of(sw), a))
		act.append(spawn_timed(deploy(sw, "-q", "activate", b)))
		if current_of(sw) != b:
			raise Broken("activate went to %s, not %s" % (current_of(sw), b))
		true.append(spawn_timed([tru]))
	res["activate"] = (act, rb, true)
	res["rss"] = {"rollback": peak_rss(deploy(sw, "-q", "rollback")),
	    "activate": peak_rss(deploy(sw, "-q", "activate", b))}

	# figure 1: each loop ends where it began
	ours_loop = ["sh", "-c", OURS_LOOP, "sh", DEPLOY, sw, a, b, str(SWITCHES)]
	post_loop = ["sh", "-c", POST_LOOP, "sh", post, pa, pb, str(SWITCHES)]
	o, p = [], []
	for r in range(RUNS):
		sides = [("ours", lambda: with_reader(sw, ours_loop)),
		    ("post", lambda: with_reader(post, post_loop))]
		if r % 2:
			sides.reverse()
		for name, fn in sides:
			(o if name == "ours" else p).append(fn())
		say("  run %d: failed reads: deploy %d of %d, post's rm+ln %d of %d"
		    % (r, o[-1][1], o[-1][0], p[-1][1], p[-1][0]))
	if current_of(sw) != b or current_of(post) != pb:
		raise Broken("the switch loops did not end where they began")
	res["switch"] = (o, p)

	res["switch_root"] = (sw, a, b)


def make_tree(dst, nfiles, size):
	"""nfiles files of size bytes, 100 a folder, 25 folders a parent:
	the shape of a vendored asset or node_modules tree."""
	data = b"x" * size
	made = 0
	a = 0
	while made < nfiles:
		for b in range(25):
			if made >= nfiles:
				break
			d = os.path.join(dst, "a%03d" % a, "b%02d" % b)
			os.makedirs(d)
			for f in range(min(100, nfiles - made)):
				with open(os.path.join(d, "f%03d.js" % f), "wb") as fh:
					if size:
						fh.write(data)
				made += 1
		a += 1


def count_files(top):
	n = 0
	for _, dirs, files in os.walk(top):
		n += len(files)
		n += sum(1 for d in dirs if os.path.islink(os.path.join(_, d)))
	return n


def prune_bench(url, app, res):
	"""Figure 6.  A deploy root whose oldest release holds PRUNE_FILES
	files; `deploy -k 2 prune` removes exactly that one, timed against
	rm -rf of an identical copy beside it.

	The files are empty by default (BENCH_PRUNE_FILE_SIZE): on a disk
	mounted with `discard`, freeing 50,000 written data blocks costs up to
	a minute of TRIM that falls alike on both sides and drowns what the
	two removers do differently (walk, open, unlink)."""
	pr = os.path.join(W, "prune")
	setup_ours(pr, url, "requirements = bench-none.txt\nkeep = 10\n")
	tpl = os.path.join(W, "tree-template")
	rmdir = os.path.join(W, "rmrf")
	os.makedirs(rmdir)
	rels = []
	for i in range(2):
		sha = commit(app, "prune-base-%d" % i)
		run(deploy(pr, "-k", "10", "deploy"), log="prune.log")
		rels.append(sha)
	inrel = count_files(os.path.join(pr, "releases", rels[0]))
	make_tree(tpl, PRUNE_FILES - inrel, PRUNE_FILE_SIZE)
	dp, rr = [], []
	rss = None
	for r in range(RUNS + 1):
		old = rels[-2]
		sha = commit(app, "prune-%d" % r)
		run(deploy(pr, "-k", "10", "deploy"), log="prune.log")
		rels.append(sha)
		rel = os.path.join(pr, "releases", old)
		copy = os.path.join(rmdir, old)
		run(["cp", "-a", rel, copy], log="prune.log")
		cps = [subprocess.Popen(["cp", "-a", tpl, os.path.join(d, "bulk")],
		    env=ENV) for d in (rel, copy)]
		if any(p.wait() for p in cps):
			raise Broken("cp -a of the prune tree failed")
		n = count_files(rel)
		if n != PRUNE_FILES:
			raise Broken("the release to prune holds %d files, not %d" % (n,
			    PRUNE_FILES))
		os.sync()
		pargv = deploy(pr, "-q", "-k", "2", "prune")
		if r == RUNS:	# one more, untimed: its peak RSS
			rss = peak_rss(pargv)
			run(["rm", "-rf", copy], log="prune.log")
		else:
			sides = [("ours", lambda: timed(pargv, log="prune.log")),
			    ("rm", lambda: timed(["rm", "-rf", copy], log="prune.log"))]
			if r % 2:
				sides.reverse()
			t = {}
			for name, fn in sides:
				t[name] = fn()
			dp.append(t["ours"])
			rr.append(t["rm"])
			say("  run %d: deploy prune %.3fs   rm -rf %.3fs" % (r,
			    t["ours"], t["rm"]))
		left = sorted(os.listdir(os.path.join(pr, "releases")))
		if os.path.exists(rel) or os.path.exists(copy) or \
		    left != sorted(rels[-2:]):
			raise Broken("prune left %s (expected %s)" % (left, rels[-2:]))
	res["prune"] = (dp, rr, rss)


def rss_bench(url, app, pins, ours, res):
	"""Figure 7: the deploy process's own peak, on each kind of run."""
	sw, a, b = res["switch_root"]
	out = res["rss"]
	res["rss_long"] = peak_rss(deploy(sw, "-q", "activate", a))
	run(deploy(sw, "-q", "activate", b), log="switch.log")
	out["no-op deploy"] = peak_rss(deploy(ours, "-q", "deploy"))
	commit(app, "rss-code")
	out["code-only deploy"] = peak_rss(deploy(ours, "-q", "deploy"))
	commit(app, "rss-cold", pins_with_settings(pins, RUNS + 1))
	out["cold deploy"] = peak_rss(deploy(ours, "-q", "deploy"))
	out["prune %d files" % PRUNE_FILES] = res["prune"][2]
	out["status"] = peak_rss(deploy(ours, "status"))



# ---------------------------------------------------------------- figure 8

ZD_APP = """import os
import time

time.sleep(0.5)		# an app that takes a while to import
VERSION = open("VERSION").read().strip()
REVISION = os.path.basename(os.getcwd())


def app(environ, start_response):
    body = REVISION if environ.get("PATH_INFO") == "/health" else VERSION
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [body.encode() + b"\\n"]
"""

ZD_PYTHON = "/usr/bin/python3"	# Debian's, with python3-gunicorn
ZD_SV = """[unix_http_server]
file=%(dir)s/sv.sock

[supervisord]
pidfile=%(dir)s/sv.pid
logfile=%(dir)s/sv.log
childlogdir=%(dir)s
nodaemon=false

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[supervisorctl]
serverurl=unix://%(dir)s/sv.sock

"""
# the plain program binds its own port; the rest as docs/zero-downtime.md's
# recipe
ZD_PLAIN = """[program:%(name)s]
command=%(root)s/current/.venv/bin/python -m gunicorn --bind 127.0.0.1:%(port)d --chdir %(root)s/current --workers 2 --graceful-timeout 30 app:app
directory=%(root)s/current
environment=PWD="%(root)s/current"
startsecs=3
stopwaitsecs=40
stopasgroup=true
killasgroup=true
"""


def readme_block(name):
	"""The indented block between <!-- recipe:NAME --> markers in
	docs/zero-downtime.md or docs/front-door.md."""
	text = ""
	for doc in ("zero-downtime.md", "front-door.md"):
		with open(os.path.join(TOP, "docs", doc)) as f:
			text += f.read()
	m = re.search(r"^<!-- recipe:%s -->\n(.*?)^<!-- /recipe:%s -->$" % (
	    name, name), text, re.S | re.M)
	if m is None:
		raise Broken("docs/zero-downtime.md and docs/front-door.md have "
		    "no recipe:%s" % name)
	return "".join(l[4:] + "\n" for l in m.group(1).splitlines() if l)


def post_restart_lines():
	"""The post's restart, as bench/post-deploy.sh has it (commented
	out there: the other figures leave restarts out)."""
	with open(os.path.join(HERE, "post-deploy.sh")) as f:
		lines = [l[2:] for l in f.read().splitlines()
		    if re.match(r"^# (supervisorctl|sleep) ", l)]
	if not any("reload" in l for l in lines):
		raise Broken("no supervisorctl lines in post-deploy.sh")
	return "\n".join(lines) + "\n"


def free_port():
	import socket
	s = socket.socket()
	s.bind(("127.0.0.1", 0))
	port = s.getsockname()[1]
	s.close()
	return port


def under_load(url, fn, tag, ver):
	"""fn() with test/load.py's 4 clients running through it, and on
	until ver answers (30 s at most): (ok, failed, gap_ms)."""
	import urllib.request
	res = os.path.join(W, "zd", "load.%s" % tag)
	stop = res + ".stop"
	for f in (res, stop, res + ".ready"):
		if os.path.exists(f):
			os.unlink(f)
	p = subprocess.Popen([sys.executable, os.path.join(TOP, "test",
	    "load.py"), url + "/", stop, res, "4", "120", "200000"], env=ENV)
	t = time.time()
	while not os.path.exists(res + ".ready"):
		if time.time() - t > 15 or p.poll() is not None:
			p.kill()
			raise Broken("the load clients got no answer from %s" % url)
		time.sleep(0.05)
	fn()
	t = time.time()
	while time.time() - t < 30:
		try:
			with urllib.request.urlopen(url + "/", timeout=5) as r:
				if r.read().decode().strip() == ver:
					break
		except OSError:
			pass
		time.sleep(0.1)
	time.sleep(0.5)
	open(stop, "w").close()
	p.wait()
	with open(res) as f:
		m = re.match(r"ok=(\d+) failed=(\d+) gap_ms=(\d+)", f.readline())
	return int(m.group(1)), int(m.group(2)), int(m.group(3))


def zd_bench(res):
	"""Figure 8: failed requests and the longest gap without an answer
	while a deploy replaces v(N) by v(N+1) under 4 looping clients, for
	three set-ups, each with its own supervisord and a gunicorn app (2
	workers, 0.5 s import) in a virtualenv made with
	--system-site-packages:
	  recipe  docs/zero-downtime.md's [fcgi-program:web] group, program = web:*
	          (deploy restarts it one process at a time)
	  plain   a [program] whose gunicorn binds its own port, program = web
	  post    the same [program], switched with the post's rm + ln -s and
	          restarted with its lines: reload, sleep 5, stop, start
	          (their errors ignored, as the script does)
	The clients run on until the new version answers."""
	if subprocess.run([ZD_PYTHON, "-c", "import gunicorn"],
	    stderr=subprocess.DEVNULL).returncode != 0 or \
	    shutil.which("supervisord", path=SYSPATH) is None:
		say("  skipped: no supervisord, or no gunicorn for %s" % ZD_PYTHON)
		return
	zd = os.path.join(W, "zd")
	app = os.path.join(zd, "app")
	os.makedirs(app)
	with open(os.path.join(app, "app.py"), "w") as f:
		f.write(ZD_APP)
	with open(os.path.join(app, "check_revision.py"), "w") as f:
		f.write(readme_block("check"))
	run(["git", "init", "-q", app], log="zd.log")
	run(["git", "-C", app, "symbolic-ref", "HEAD", "refs/heads/main"],
	    log="zd.log")
	commit(app, "zd-0")
	sides = {}
	try:
		for side in ("recipe", "plain", "post"):
			d = os.path.join(zd, side)
			root = os.path.join(d, "root")
			os.makedirs(d)
			port = free_port()
			name = "example" if side == "post" else "web"
			if side == "recipe":
				sec = readme_block("fcgi").replace("/var/www/example",
				    root).replace("127.0.0.1:8000", "127.0.0.1:%d" % port)
			else:
				sec = ZD_PLAIN % {"name": name, "root": root, "port": port}
			conf = os.path.join(d, "supervisord.conf")
			with open(conf, "w") as f:
				f.write(ZD_SV % {"dir": d} + sec + "stdout_logfile=%s/app.log\n"
				    "redirect_stderr=true\n" % d)
			sv = ["supervisorctl", "-c", conf]
			sides[side] = (root, port, conf, sv)
			run(["supervisord", "-c", conf], log="zd.log")
			cfg = "virtualenv = virtualenv --system-site-packages -p %s\n" \
			    "supervisorctl = supervisorctl -c %s\n" % (ZD_PYTHON, conf)
			if side == "recipe":
				cfg += readme_block("conf").replace("127.0.0.1:8000",
				    "127.0.0.1:%d" % port)
			else:
				cfg += "program = %s\ncheck = python check_revision.py " \
				    "http://127.0.0.1:%d/health\n" % (name, port)
			time.sleep(1)
			setup_ours(root, "file://" + app, cfg)
			run(deploy(root, "deploy"), log="zd.log")
		post = post_restart_lines()
		out = {k: [] for k in sides}
		for r in range(RUNS):
			ver = "zd-%d" % (r + 1)
			sha = commit(app, ver)
			order = list(sides)
			order = order[r % 3:] + order[:r % 3]
			for side in order:
				root, port, conf, sv = sides[side]
				url = "http://127.0.0.1:%d" % port
				if side == "post":
					run(deploy(root, "prepare"), log="zd.log")
					script = ("supervisorctl() { command supervisorctl -c "
					    "\"$CONF\" \"$@\"; }\nrm $ROOT/current && ln -s "
					    "$ROOT/releases/$HEAD $ROOT/current\n" + post)
					fn = lambda: run(["bash", "-c", script], env=dict(ENV,
					    CONF=conf, ROOT=root, HEAD=sha), log="zd.log",
					    check=False)
				else:
					fn = lambda: run(deploy(root, "deploy"), log="zd.log")
				o = under_load(url, fn, side, ver)
				expect_current(root, sha, "figure 8, %s" % side, ver)
				out[side].append(o)
				say("  run %d %-6s: %d ok, %d failed, longest gap %d ms" % (
				    r, side, o[0], o[1], o[2]))
		res["zd"] = out
	finally:
		for side in sides:
			run(sides[side][3] + ["shutdown"], log="zd.log", check=False)
		# a supervisord caught in the post's reload ignores shutdown
		for side in sides:
			pidf = os.path.join(zd, side, "sv.pid")
			for i in range(100):
				try:
					with open(pidf) as f:
						pid = int(f.read())
					os.kill(pid, signal.SIGTERM if i % 20 == 0 else 0)
				except (OSError, ValueError):
					break
				time.sleep(0.1)

SV_LOOP = '''import signal
import sys
import time


def term(*_):
    time.sleep(1)  # a graceful stop: finish what it holds (figure 4s)
    sys.exit(0)


signal.signal(signal.SIGTERM, term)
while True:
    time.sleep(60)
'''
SV_PROG = """[program:%(name)s]
command=%(python)s %(root)s/current/loop.py
directory=%(root)s/current
startsecs=1
stopwaitsecs=10
stdout_logfile=%(dir)s/%(name)s.log
redirect_stderr=true

"""
OLD_COMMIT = "65e49d3"	# the last binary that ran supervisorctl (issue 32)


def sv_cpu(sv):
	"""user+sys CPU seconds supervisord (its pid file in sv) has used so
	far, from /proc/PID/stat"""
	with open(os.path.join(sv, "sv.pid")) as f:
		pid = int(f.read())
	with open("/proc/%d/stat" % pid) as f:
		fields = f.read().rsplit(")", 1)[1].split()
	return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def spawn_cpu(argv, expect=0):
	"""user+sys CPU seconds of argv and every child it waited for (wait4's
	rusage), and its wall time; output to LOGS/sv.log."""
	log = os.path.join(LOGS, "sv.log")
	fa = [(os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
	    (os.POSIX_SPAWN_OPEN, 1, log, os.O_WRONLY | os.O_APPEND | os.O_CREAT,
		0o644),
	    (os.POSIX_SPAWN_DUP2, 1, 2)]
	t0 = time.perf_counter()
	pid = os.posix_spawn(argv[0], argv, ENV, file_actions=fa)
	_, st, ru = os.wait4(pid, 0)
	t = time.perf_counter() - t0
	rc = os.waitstatus_to_exitcode(st)
	if expect is not None and rc != expect:
		raise Broken("%s exited %d, not %d (see %s)\n%s" % (" ".join(argv),
		    rc, expect, log, tail(log, 5)))
	return ru.ru_utime + ru.ru_stime, t


def build_old(dst):
	"""The binary of OLD_COMMIT, built from `git archive` into dst."""
	os.makedirs(dst)
	run(["bash", "-c", 'set -o pipefail; git -C "$1" archive "$2" | '
	    'tar -x -C "$3"', "archive", TOP, OLD_COMMIT, dst], log="old.log")
	run(["make", "-C", dst, "deploy"], log="old.log")
	return os.path.join(dst, "deploy")


def sv_bench(res):
	"""Figures 3p and 4c (issue 32), one supervisord started here (in
	W/sv) running a python sleep loop from ROOT/current for each of two
	roots with program = NAME and supervisorctl = supervisorctl -c CONF:
	  3p  no-op `deploy -q deploy` of root `new` (this binary, which asks
	      supervisord over its unix socket) vs `git fetch` of its mirror,
	      interleaved as figure 3
	  4c  user+sys CPU (wait4: deploy and its children; the program is
	      supervisord's) of a code-only redeploy with a restart: this
	      binary on root `new` vs the one built from OLD_COMMIT (which ran
	      supervisorctl) on root `old`, alternating, one commit a run"""
	if shutil.which("supervisord", path=SYSPATH) is None or \
	    shutil.which("supervisorctl", path=SYSPATH) is None:
		say("  skipped: no supervisord/supervisorctl in %s" % SYSPATH)
		return
	sv = os.path.join(W, "sv")
	app = os.path.join(sv, "app")
	os.makedirs(app)
	with open(os.path.join(app, "loop.py"), "w") as f:
		f.write(SV_LOOP)
	run(["git", "init", "-q", app], log="sv.log")
	run(["git", "-C", app, "symbolic-ref", "HEAD", "refs/heads/main"],
	    log="sv.log")
	commit(app, "sv-0")
	conf = os.path.join(sv, "supervisord.conf")
	roots = {k: os.path.join(sv, k) for k in ("new", "old")}
	with open(conf, "w") as f:
		f.write(ZD_SV % {"dir": sv} + "".join(SV_PROG % {"name": k,
		    "root": r, "dir": sv, "python": ZD_PYTHON}
		    for k, r in roots.items()))
	ctl = ["supervisorctl", "-c", conf]
	started = False
	try:
		if subprocess.run(["git", "-C", TOP, "cat-file", "-e",
		    OLD_COMMIT + "^{commit}"], env=ENV, stderr=subprocess.DEVNULL
		    ).returncode != 0:
			say("  4c skipped: %s is not in %s's git history" % (
			    OLD_COMMIT, TOP))
			res["sv_old_skipped"] = True
			bins = {"new": DEPLOY}
			del roots["old"]
		else:
			say("  building %s's binary" % OLD_COMMIT)
			bins = {"new": DEPLOY, "old": build_old(os.path.join(sv,
			    "build"))}
		cfg = "program = %%s\nsupervisorctl = supervisorctl -c %s\n" % conf
		for k, r in roots.items():
			run([bins[k], "-C", r, "init", "file://" + app], log="sv.log")
			with open(os.path.join(r, "shared", "deploy.conf"), "w") as f:
				f.write("# written by bench/bench.py\nrepo = file://%s\n%s"
				    % (app, cfg % k))
		run(["supervisord", "-c", conf], log="sv.log")
		started = True
		time.sleep(1)
		for k, r in roots.items():
			run([bins[k], "-C", r, "deploy"], log="sv.log")
			expect_current(r, current_of(r), k, "sv-0")
		# 3p: nothing new
		new = roots["new"]
		cur = current_of(new)
		fetch = [shutil.which("git", path=SYSPATH), "--git-dir=%s/repo" % new,
		    "fetch"]
		dep = [DEPLOY, "-C", new, "-q", "deploy"]
		for i in range(3):
			spawn_timed(dep)
			spawn_timed(fetch)
		d, g = [], []
		for i in range(FAST):
			if i % 2:
				g.append(spawn_timed(fetch))
				d.append(spawn_timed(dep))
			else:
				d.append(spawn_timed(dep))
				g.append(spawn_timed(fetch))
		if current_of(new) != cur:
			raise Broken("figure 3p: a no-op deploy changed current")
		res["sv_noop"] = (d, g)
		say("  3p: no-op deploy %.1f ms, git fetch %.1f ms (medians)" % (
		    med(d) * 1e3, med(g) * 1e3))
		# 4c: code-only redeploys with a restart
		out = {"new": [], "old": []}
		svout = {"new": [], "old": []}
		for i in range(RUNS if "old" in roots else 0):
			ver = "sv-%d" % (i + 1)
			sha = commit(app, ver)
			order = ("new", "old") if i % 2 == 0 else ("old", "new")
			for k in order:
				_, o = run(ctl + ["pid", k], capture=True, log="sv.log")
				s0 = sv_cpu(sv)
				out[k].append(spawn_cpu([bins[k], "-C", roots[k], "-q",
				    "deploy"]))
				svout[k].append(sv_cpu(sv) - s0)
				expect_current(roots[k], sha, "figure 4c, %s" % k, ver)
				_, o2 = run(ctl + ["pid", k], capture=True, log="sv.log")
				if o.strip() == o2.strip() or not o2.strip().isdigit():
					raise Broken("figure 4c, %s: the program was not "
					    "restarted (pid %s, then %s)" % (k, o.strip(),
					    o2.strip()))
			say("  4c run %d: CPU new %.1f ms, old %.1f ms; 4s "
			    "supervisord's CPU new %.1f ms, old %.1f ms" % (i,
			    out["new"][-1][0] * 1e3, out["old"][-1][0] * 1e3,
			    svout["new"][-1] * 1e3, svout["old"][-1] * 1e3))
		if "old" in roots:
			res["sv_cpu"] = out
			res["sv_own"] = svout
	finally:
		if started:
			run(ctl + ["shutdown"], log="sv.log", check=False)
			pidf = os.path.join(sv, "sv.pid")
			for i in range(100):
				try:
					with open(pidf) as f:
						pid = int(f.read())
					os.kill(pid, signal.SIGTERM if i % 20 == 0 else 0)
				except (OSError, ValueError):
					break
				time.sleep(0.1)


def sv_rows(res, row):
	"""Figures 3p and 4c: their rows and details."""
	details = []
	if "sv_noop" in res:
		d, g = res["sv_noop"]
		r = med(d) / med(g)
		row("3p", "no-op deploy with a program vs git fetch",
		    "%.1f ms" % (med(d) * 1e3), "%.1f ms" % (med(g) * 1e3),
		    "%.2fx" % r, "<= 1.5x", r <= 1.5)
		details.append("  3p no-op deploy (program = new, supervisord "
		    "running) %s ms, git fetch %s ms" % (spread(d, 1e3, "%.1f"),
		    spread(g, 1e3, "%.1f")))
	if res.get("sv_old_skipped"):
		details.append("  4c skipped: %s (the binary to compare with) is "
		    "not in this checkout's history" % OLD_COMMIT)
	if "sv_cpu" in res:
		n = [x[0] for x in res["sv_cpu"]["new"]]
		o = [x[0] for x in res["sv_cpu"]["old"]]
		r = med(n) / med(o)
		row("4c", "CPU of code-only redeploy + restart vs %s" % OLD_COMMIT,
		    "%.1f ms" % (med(n) * 1e3), "%.1f ms" % (med(o) * 1e3),
		    "%.2fx" % r, "<= 0.3x", r <= 0.3)
		details.append("  4c user+sys of deploy and its children, this "
		    "binary %s ms, %s's (supervisorctl) %s ms; wall %s s vs %s s" % (
		    spread(n, 1e3, "%.1f"), OLD_COMMIT, spread(o, 1e3, "%.1f"),
		    spread([x[1] for x in res["sv_cpu"]["new"]]),
		    spread([x[1] for x in res["sv_cpu"]["old"]])))
	if "sv_own" in res:
		n, o = res["sv_own"]["new"], res["sv_own"]["old"]
		r = med(n) / med(o) if med(o) > 0 else 0.0
		row("4s", "supervisord's CPU in that redeploy vs %s" % OLD_COMMIT,
		    "%.1f ms" % (med(n) * 1e3), "%.1f ms" % (med(o) * 1e3),
		    "%.2fx" % r, "<= 0.3x", r <= 0.3)
		details.append("  4s supervisord's own user+sys while deploy "
		    "restarts a program that takes 1 s to stop (a waiting "
		    "stopProcess makes supervisord poll in a busy loop): this "
		    "binary %s ms, %s's %s ms" % (spread(n, 1e3, "%.1f"),
		    OLD_COMMIT, spread(o, 1e3, "%.1f")))
	return details


PO_PYPROJECT = """[tool.poetry]
name = "exampleapp"
version = "1.0"
description = "the deploy benchmark's app"
authors = ["bench <bench@example.invalid>"]

[tool.poetry.dependencies]
python = "^3.7"
%(deps)s
[[tool.poetry.source]]
name = "local"
url = "%(url)s"
default = true
"""


def poetry_bench(res, wheels, pins):
	"""Figure 10 (issue 31): a poetry.lock bump.  The app's pyproject.toml
	pins the wheels of mkwheels.py (served by test/pep503.py on
	127.0.0.1: poetry reads a PEP 503 index, not a folder); `poetry lock
	--no-update` (untimed) after each run's bd-settings bump.  Per run,
	alternating: `deploy -q deploy` of a root with deps = poetry (it
	derives the new venv from the current one: a copy, then `poetry
	install --only main --no-root --sync`), against a fresh virtualenv
	plus the same `poetry install` of the same lock in a new folder.
	Both share one POETRY_CACHE_DIR, warmed by the lock and the first
	deploy."""
	if shutil.which("poetry", path=SYSPATH) is None:
		say("  skipped: poetry is not in %s" % SYSPATH)
		res["poetry_skipped"] = True
		return
	po = os.path.join(W, "poetry")
	app = os.path.join(po, "app")
	os.makedirs(app)
	penv = dict(ENV, POETRY_CACHE_DIR=os.path.join(po, "cache"),
	    POETRY_VIRTUALENVS_PATH=os.path.join(po, "poetry-venvs"),
	    POETRY_VIRTUALENVS_CREATE="false", POETRY_NO_INTERACTION="1")
	portf = os.path.join(po, "port")
	logf = open(os.path.join(LOGS, "pep503.log"), "ab")
	index = subprocess.Popen([sys.executable, os.path.join(TOP, "test",
	    "pep503.py"), wheels, portf], stdin=subprocess.DEVNULL,
	    stdout=logf, stderr=logf)
	logf.close()
	try:
		for i in range(100):
			if os.path.exists(portf) or index.poll() is not None:
				break
			time.sleep(0.1)
		try:
			with open(portf) as f:
				url = "http://127.0.0.1:%d/simple/" % int(f.read())
		except (OSError, ValueError):
			raise Broken("figure 10: test/pep503.py did not start (see %s)"
			    % os.path.join(LOGS, "pep503.log"))

		def lock(minor):
			deps = "".join('"%s" = "%s"\n' % tuple(p.split("==")) for p in
			    pins_with_settings(pins, minor))
			with open(os.path.join(app, "pyproject.toml"), "w") as f:
				f.write(PO_PYPROJECT % {"deps": deps, "url": url})
			run(["poetry", "lock", "--no-update"], cwd=app, env=penv,
			    log="poetry.log")
		with open(os.path.join(app, "README.md"), "w") as f:
			f.write("# exampleapp\n\nFigure 10's app.\n")
		run(["git", "init", "-q", app], log="poetry.log")
		run(["git", "-C", app, "symbolic-ref", "HEAD", "refs/heads/main"],
		    log="poetry.log")
		lock(0)
		commit(app, "po-0")
		root = os.path.join(po, "root")
		run(deploy(root, "init", "file://" + app), log="poetry.log")
		with open(os.path.join(root, "shared", "deploy.conf"), "w") as f:
			f.write("# written by bench/bench.py\nrepo = file://%s\n"
			    "deps = poetry\nkeep = 100\n" % app)
		run(deploy(root, "deploy"), env=penv, log="poetry.log")
		d, b = [], []
		for i in range(RUNS):
			ver = "po-%d" % (i + 1)
			lock(i + 1)
			sha = commit(app, ver)
			fresh = os.path.join(po, "fresh-%d" % i)
			os.makedirs(fresh)
			for f in ("pyproject.toml", "poetry.lock"):
				shutil.copy2(os.path.join(app, f), fresh)
			base = ["bash", "-c", 'set -e; cd "$1"; virtualenv -q -p python3 '
			    '.venv; . .venv/bin/activate; poetry install --only main '
			    '--no-root --sync --no-interaction', "fresh", fresh]
			for side in (("deploy", "fresh") if i % 2 == 0 else
			    ("fresh", "deploy")):
				if side == "deploy":
					d.append(timed(deploy(root, "-q", "deploy"), env=penv,
					    log="poetry.log"))
					expect_current(root, sha, "figure 10", ver)
				else:
					b.append(timed(base, env=penv, log="poetry.log"))
			_, fr = run([os.path.join(root, "current", ".venv", "bin",
			    "python"), "-m", "pip", "freeze"], capture=True,
			    log="poetry.log")
			if "bd-settings==1.0.%d" % (i + 1) not in fr.split():
				raise Broken("figure 10: the release's venv lacks "
				    "bd-settings==1.0.%d:\n%s" % (i + 1, fr))
			shutil.rmtree(fresh)
			say("  10 run %d: deploy %.2f s, fresh poetry install %.2f s" % (
			    i, d[-1], b[-1]))
		res["poetry"] = (d, b)
	finally:
		index.terminate()
		index.wait()


def poetry_rows(res, row):
	"""Figure 10: its row (or its skipped line) and details."""
	if res.get("poetry_skipped"):
		return ["  10 poetry.lock bump: skipped (poetry is not installed)"]
	if "poetry" not in res:
		return []
	d, b = res["poetry"]
	r = med(d) / med(b)
	row("10", "poetry.lock bump vs fresh poetry install", "%.2f s" % med(d),
	    "%.2f s" % med(b), "%.2fx" % r, "-", None)
	return ["  10 poetry.lock bump (one pin): deploy %s s, virtualenv + "
	    "poetry install %s s; ratio a run: %s" % (spread(d), spread(b),
	    ", ".join("%.2f" % (x / y) for x, y in zip(d, b)))]


FD_MANAGE = """import sys

import app  # noqa: F401 (configures Django)
from django.core.management import execute_from_command_line

execute_from_command_line(sys.argv)
"""
FD_NGINX = """%(user)sdaemon off;
worker_processes 1;
pid %(dir)s/nginx.pid;
error_log %(dir)s/error.log;
events { worker_connections 256; }
http {
	include /etc/nginx/mime.types;
	access_log off;
	client_body_temp_path %(dir)s/body;
	proxy_temp_path %(dir)s/proxy;
	fastcgi_temp_path %(dir)s/fastcgi;
	include %(dir)s/ours.conf;
	include %(dir)s/current-only.conf;
}
"""


def fd_commit(app, ver):
	with open(os.path.join(app, "assets", "app.css"), "w") as f:
		f.write("/* %s */\nbody { color: #222; }\n" % ver)
	return commit(app, ver)


def fd_load(urls, fn, tag):
	"""fn() with test/pageload.py's 4 browsers on each of urls: for each,
	(pages, pages failed, assets failed, mismatched)."""
	procs = []
	for i, url in enumerate(urls):
		res = os.path.join(W, "fd", "load.%s.%d" % (tag, i))
		for f in (res, res + ".stop", res + ".ready"):
			if os.path.exists(f):
				os.unlink(f)
		procs.append((res, subprocess.Popen([sys.executable, os.path.join(
		    TOP, "test", "pageload.py"), url + "/", res + ".stop", res, "4",
		    "120", "100000"], env=ENV)))
	t = time.time()
	while not all(os.path.exists(r + ".ready") for r, _ in procs):
		if time.time() - t > 15:
			for _, p in procs:
				p.kill()
			raise Broken("the browsers got nothing from %s" % urls)
		time.sleep(0.05)
	fn()
	time.sleep(0.5)
	out = []
	for res, p in procs:
		open(res + ".stop", "w").close()
		p.wait()
		with open(res) as f:
			m = re.match(r"pages=(\d+) pages_failed=(\d+) assets=\d+ "
			    r"assets_failed=(\d+) mismatched=(\d+)", f.readline())
		out.append(tuple(int(x) for x in m.groups()))
	return out


def fd_bench(res):
	"""Figure 9: pages and the assets they name through nginx while
	deploy replaces v(N) by v(N+1): docs/front-door.md's front door (the
	[fcgi-program:web] group of two gunicorn processes, the Django app of
	test/frontapp.py with collectstatic in build, examples/nginx.conf as
	written), 4 browsers on it; the baseline, 4 browsers on a second
	server of the same nginx, the same example without its fallback to
	previous: nginx looking under current alone, as with 376b546."""
	if subprocess.run([ZD_PYTHON, "-c", "import gunicorn, django"],
	    stderr=subprocess.DEVNULL).returncode != 0 or \
	    shutil.which("supervisord", path=SYSPATH) is None or \
	    shutil.which("nginx", path=SYSPATH) is None:
		say("  skipped: no nginx or supervisord, or no gunicorn or django "
		    "for %s" % ZD_PYTHON)
		return
	d = os.path.join(W, "fd")
	app, root = os.path.join(d, "app"), os.path.join(d, "root")
	os.makedirs(os.path.join(app, "assets"))
	shutil.copy(os.path.join(TOP, "test", "frontapp.py"),
	    os.path.join(app, "app.py"))
	with open(os.path.join(app, "manage.py"), "w") as f:
		f.write(FD_MANAGE)
	with open(os.path.join(app, "check_revision.py"), "w") as f:
		f.write(readme_block("check"))
	run(["git", "init", "-q", app], log="fd.log")
	run(["git", "-C", app, "symbolic-ref", "HEAD", "refs/heads/main"],
	    log="fd.log")
	fd_commit(app, "fd-0")
	port, nports = free_port(), (free_port(), free_port())
	conf = os.path.join(d, "supervisord.conf")
	with open(conf, "w") as f:
		f.write(ZD_SV % {"dir": d} + readme_block("fcgi").replace(
		    "/var/www/example", root).replace("127.0.0.1:8000",
		    "127.0.0.1:%d" % port) + "stdout_logfile=%s/app.log\n"
		    "redirect_stderr=true\n" % d)
	with open(os.path.join(TOP, "examples", "nginx.conf")) as f:
		ex = f.read().replace("/var/www/example", root).replace(
		    "127.0.0.1:8000", "127.0.0.1:%d" % port)
	for name, np, text in (("ours", nports[0], ex), ("current-only",
	    nports[1], re.sub(r"\n *error_page 404 = @previous;", "", ex))):
		with open(os.path.join(d, name + ".conf"), "w") as f:
			f.write(text.replace("listen 80;", "listen 127.0.0.1:%d;" % np))
	with open(os.path.join(d, "nginx.conf"), "w") as f:
		f.write(FD_NGINX % {"dir": d,
		    "user": "user root;\n" if os.getuid() == 0 else ""})
	sv = ["supervisorctl", "-c", conf]
	nginx = None
	try:
		run(["supervisord", "-c", conf], log="fd.log")
		nginx = subprocess.Popen(["nginx", "-p", d, "-c", os.path.join(d,
		    "nginx.conf")], env=ENV)
		time.sleep(1)
		setup_ours(root, "file://" + app, "virtualenv = virtualenv "
		    "--system-site-packages -p %s\nsupervisorctl = supervisorctl "
		    "-c %s\n" % (ZD_PYTHON, conf) + readme_block("static").replace(
			"127.0.0.1:8000", "127.0.0.1:%d" % port))
		run(deploy(root, "deploy"), log="fd.log")
		out = {"ours": [], "current-only": []}
		urls = ["http://127.0.0.1:%d" % p for p in nports]
		for r in range(RUNS):
			sha = fd_commit(app, "fd-%d" % (r + 1))
			o = fd_load(urls, lambda: run(deploy(root, "deploy"),
			    log="fd.log"), "r%d" % r)
			expect_current(root, sha, "figure 9", "fd-%d" % (r + 1))
			out["ours"].append(o[0])
			out["current-only"].append(o[1])
			say("  run %d: pages/assets failed %d/%d of %d; nginx under "
			    "current alone %d/%d of %d" % (r, o[0][1], o[0][2] + o[0][3],
			    o[0][0], o[1][1], o[1][2] + o[1][3], o[1][0]))
		res["fd"] = out
	finally:
		if nginx is not None:
			nginx.terminate()
			nginx.wait()
		run(sv + ["shutdown"], log="fd.log", check=False)
		pidf = os.path.join(d, "sv.pid")
		for i in range(100):
			try:
				with open(pidf) as f:
					os.kill(int(f.read()), signal.SIGTERM if i % 20 == 0 else 0)
			except (OSError, ValueError):
				break
			time.sleep(0.1)

# ---------------------------------------------------------------- report

def machine():
	cpu = "?"
	try:
		with open("/proc/cpuinfo") as f:
			for line in f:
				if line.startswith("model name"):
					cpu = line.split(":", 1)[1].strip()
					break
	except OSError:
		pass
	mem = "?"
	try:
		with open("/proc/meminfo") as f:
			mem = "%.0f GiB" % (int(f.readline().split()[1]) / 2**20)
	except OSError:
		pass
	fs = "?"
	try:
		_, out = run(["df", "-T", W], capture=True, check=False)
		fs = out.splitlines()[-1].split()[1]
	except (Broken, IndexError, OSError):
		pass

	def ver(argv):
		try:
			_, o = run(argv, capture=True, check=False)
			return o.strip().splitlines()[0]
		except (IndexError, OSError):
			return "?"
	pip = "pip ?"
	vd = os.path.join(W, "ours", "venvs")
	for v in sorted(os.listdir(vd)) if os.path.isdir(vd) else ():
		pip = " ".join(ver([os.path.join(W, "ours", "venvs", v, "bin",
		    "python"), "-m", "pip", "--version"]).split()[:2])
	return ("%s; %d cores; %s; Linux %s\n"
	    "%s; %s; %s; %s; roots on %s" % (cpu, os.cpu_count() or 0, mem,
		platform.release(), ver(["python3", "--version"]),
		ver(["git", "--version"]),
		ver(["virtualenv", "--version"]).split(" from ")[0], pip, fs))


def loadavg():
	try:
		with open("/proc/loadavg") as f:
			return " ".join(f.read().split()[:3])
	except OSError:
		return "?"


def report(res, info):
	rows = []

	def row(n, what, ours, base, ratio, target, ok):
		rows.append((n, what, ours, base, ratio, target,
		    "-" if ok is None else "pass" if ok else "MISS"))

	details = main_rows(res, row) if "switch" in res else \
	    deploy_rows(res, row) if "code" in res else \
	    bump_rows(res, row) if "bump" in res else [""]
	details += tree_rows(res, row)[1:]
	details += sv_rows(res, row)
	details += poetry_rows(res, row)
	zd = res.get("zd")
	if zd:
		for side, what in (("recipe", "fcgi-program group, rolling"),
		    ("plain", "plain [program] on its own port")):
			f = [x[1] for x in zd[side]]
			g = [x[2] for x in zd[side]]
			pf = [x[1] for x in zd["post"]]
			pg = [x[2] for x in zd["post"]]
			row("8", "deploy under load, %s: failed requests" % what,
			    "%d" % med(f), "%d" % med(pf), "-",
			    "0" if side == "recipe" else "-",
			    max(f) == 0 if side == "recipe" else None)
			row("8", "  longest gap without an answer", "%d ms" % med(g),
			    "%d ms" % med(pg), "%.3fx" % (med(g) / max(med(pg), 1)),
			    "-", None)
		details.append("  8 failed requests / longest gap (ms) a run: %s" %
		    "; ".join("%s %s" % (k, ", ".join("%d/%d" % (x[1], x[2])
			for x in v)) for k, v in zd.items()))
	fd = res.get("fd")
	if fd:
		o, b = fd["ours"], fd["current-only"]
		row("9", "deploy through nginx, %d runs: pages failed" % len(o),
		    "%d of %d" % (sum(x[1] for x in o), sum(x[0] for x in o)),
		    "%d of %d" % (sum(x[1] for x in b), sum(x[0] for x in b)), "-",
		    "0", sum(x[1] for x in o) == 0)
		row("9", "  assets failed (or another release's)",
		    "%d of %d" % (sum(x[2] + x[3] for x in o), sum(x[0] for x in o)),
		    "%d of %d" % (sum(x[2] + x[3] for x in b), sum(x[0] for x in b)),
		    "-", "0", sum(x[2] + x[3] for x in o) == 0)
		details.append("  9 pages failed / assets failed a run: ours %s; "
		    "current only %s" % tuple(", ".join("%d/%d" % (x[1], x[2] + x[3])
			for x in v) for v in (o, b)))
	report_table(res, info, rows, details)


def main_rows(res, row):
	o, p = res["switch"]
	of = [x[1] for x in o]
	pf = [x[1] for x in p]
	row("1", "failed reads of current/VERSION, %d switches" % SWITCHES,
	    "%d of %dk" % (med(of), med([x[0] for x in o]) // 1000),
	    "%d of %dk" % (med(pf), med([x[0] for x in p]) // 1000),
	    "-", "0", max(of) == 0)
	act, rb, true = res["activate"]
	row("2", "activate, whole process", "%.2f ms" % (med(act) * 1e3), "-", "-",
	    "<= 5 ms", med(act) <= 0.005)
	row("2", "rollback, whole process", "%.2f ms" % (med(rb) * 1e3), "-", "-",
	    "<= 5 ms", med(rb) <= 0.005)
	d, g = res["noop"]
	r = med(d) / med(g)
	row("3", "no-op deploy vs git fetch of its mirror",
	    "%.1f ms" % (med(d) * 1e3), "%.1f ms" % (med(g) * 1e3),
	    "%.2fx" % r, "<= 1.2x", r <= 1.2)
	deploy_rows(res, row)
	dp, rr, _ = res["prune"]
	r = med(dp) / med(rr)
	row("6", "prune %d-file release vs rm -rf" % PRUNE_FILES,
	    "%.3f s" % med(dp), "%.3f s" % med(rr), "%.2fx" % r, "<= 1.1x",
	    r <= 1.1)
	rss = res["rss"]
	worst = max(rss, key=lambda k: rss[k][0])
	row("7", "peak RSS of deploy (max: %s)" % worst,
	    "%.2f MB" % (rss[worst][0] * 1024 / 1e6), "-", "-", "<= 2 MB",
	    rss[worst][0] * 1024 <= 2e6)
	details = [""]
	details.append("medians; runs: %d heavy (1, 4-6), %d quick (2-3); ranges "
	    "min-max:" % (RUNS, FAST))
	details.append("  1 failed reads, deploy: %s; post's rm+ln: %s; reads a "
	    "run: %s; loop time a switch: deploy %.2f ms, rm+ln %.2f ms" % (
		spread(of, fmt="%d"), spread(pf, fmt="%d"),
		spread([x[0] for x in o + p], fmt="%d"),
		med([x[2] for x in o]) / SWITCHES * 1e3,
		med([x[2] for x in p]) / SWITCHES * 1e3))
	details.append("  2 activate %s ms, rollback %s ms; the harness's spawn+wait "
	    "of /bin/true, included in both: %s ms, median %.2f (so deploy's own "
	    "share: activate %.2f ms, rollback %.2f ms)" % (spread(act, 1e3),
		spread(rb, 1e3), spread(true, 1e3), med(true) * 1e3,
		(med(act) - med(true)) * 1e3, (med(rb) - med(true)) * 1e3))
	details.append("  3 no-op deploy %s ms, git fetch %s ms" % (
	    spread(d, 1e3, "%.1f"), spread(g, 1e3, "%.1f")))
	details += deploy_rows(res, None)[1:]
	details.append("  6 prune %s s, rm -rf %s s (files of %d bytes)" % (
	    spread(dp, fmt="%.3f"), spread(rr, fmt="%.3f"), PRUNE_FILE_SIZE))
	details.append("  7 peak RSS (KiB, %s; 2 MB = 1953 KiB): %s; not in the "
	    "max: activate once the switch runs left %d activations in the "
	    "history: %d" % (rss[worst][1], ", ".join("%s %d" % (k, v[0])
		for k, v in rss.items()), RUNS * SWITCHES, res["rss_long"][0]))
	if not PRUNE_IN_DEPLOYS:
		details.append("  4-5 leave deleting old releases out of both sides "
		    "(BENCH_PRUNE_IN_DEPLOYS=1 puts it back); figure 6 times it")
	return details


def deploy_rows(res, row):
	"""Figures 4, 5 and 5b: their rows (when row is given) and details."""
	for key, n, what, target in (
	    ("code", "4", "code-only redeploy vs post's script", 0.2),
	    ("cold", "5", "cold deploy vs post's script", 1.0),
	    ("bump", "5b", "dependency bump (one pin) vs post's script", 0.5)):
		co, cp, _ = res[key]
		r = med(co) / med(cp)
		if row is not None:
			row(n, what, "%.2f s" % med(co), "%.2f s" % med(cp),
			    "%.2fx" % r, "<= %.1fx" % target, r <= target)
	details = [""]
	for key, n in (("code", "4 code-only"), ("cold", "5 cold (reuse_venv = "
	    "no)"), ("bump", "5b bump")):
		co, cp, steps = res[key]
		names = []
		for s in steps:
			names += [k for k in s if k not in names]
		bd = ", ".join("%s %.2f" % (k, med([s.get(k, 0) for s in steps]))
		    for k in names)
		details.append("  %s: deploy %s s, post's script %s s; deploy's steps "
		    "(s): %s" % (n, spread(co), spread(cp), bd))
	return details


def bump_rows(res, row):
	"""Figure 5b alone: its row, and where the time went on both sides."""
	co, cp, steps = res["bump"]
	r = med(co) / med(cp)
	row("5b", "dependency bump (one pin) vs post's script",
	    "%.2f s" % med(co), "%.2f s" % med(cp), "%.2fx" % r, "<= 0.5x",
	    r <= 0.5)
	details = ["", "medians of %d runs, alternating; ranges min-max:" %
	    len(co), "  5b bump: deploy %s s, post's script %s s; ratio a run: %s"
	    % (spread(co), spread(cp), ", ".join("%.2f" % (a / b) for a, b in
		zip(co, cp)))]
	names = []
	for s in steps:
		names += [k for k in s if k not in names]
	details.append("  deploy's steps (s): %s" % ", ".join("%s %.2f" % (k,
	    med([s.get(k, 0) for s in steps])) for k in names))
	po, pp = res["profile"]
	for who, prof in (("deploy", po), ("post's script", pp)):
		names = []
		for p in prof:
			names += [k for k in p if k not in names]
		details.append("  %s, where the time went (s, medians): %s" % (who,
		    ", ".join("%s %s" % (k, ("%d" if k == "pip starts" else "%.2f")
			% med([p.get(k, 0) for p in prof])) for k in names)))
	details.append("  post's script: 1 pip start a run (its one pip "
	    "install; virtualenv seeds from its app-data, starting no pip)")
	return details


def report_table(res, info, rows, details):
	hdr = ("#", "figure", "deploy", "baseline", "ratio", "target", "result")
	w = [max(len(str(x[i])) for x in rows + [hdr]) for i in range(7)]
	lines = ["deploy benchmark, %s, %.0f s; load average %s at the start, "
	    "%s at the end" % (time.strftime("%Y-%m-%d %H:%M"),
		time.time() - res["t0"], res["load0"], loadavg()), info, ""]
	fmt = "  ".join("%%-%ds" % x if i < 2 else "%%%ds" % x
	    for i, x in enumerate(w))
	lines.append(fmt % hdr)
	lines.append(fmt % tuple("-" * x for x in w))
	for x in rows:
		lines.append(fmt % x)
	lines += details
	print("\n".join(lines), flush=True)


# ---------------------------------------------------------------- main

def main():
	global W, ENV, LOGS, DEPLOY
	if not os.access(DEPLOY, os.X_OK):
		sys.exit("bench: no deploy binary at %s (run make)" % DEPLOY)
	for tool in ("git", "virtualenv", "bash", "python3", "cp", "rm"):
		if shutil.which(tool, path=SYSPATH) is None:
			sys.exit("bench: %s not found in %s" % (tool, SYSPATH))
	os.umask(0o022)
	base = os.environ.get("BENCH_DIR") or os.path.join(HERE, "work")
	os.makedirs(base, exist_ok=True)
	W = tempfile.mkdtemp(prefix="run.", dir=base)
	LOGS = os.path.join(W, "logs")
	os.makedirs(LOGS)
	# a copy, so that a rebuild of ./deploy during the run changes nothing
	os.makedirs(os.path.join(W, "bin"))
	shutil.copy2(DEPLOY, os.path.join(W, "bin", "deploy"))
	DEPLOY = os.path.join(W, "bin", "deploy")
	ENV = {k: v for k, v in os.environ.items()
	    if not k.startswith(("PIP_", "PYTHON", "VIRTUAL_ENV", "DEPLOY_",
		"GIT_", "LD_"))}
	ENV.update(PATH=SYSPATH, LC_ALL="C",
	    PIP_NO_INDEX="1", PIP_FIND_LINKS=os.path.join(W, "wheels"),
	    PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1",
	    GIT_AUTHOR_NAME="bench", GIT_AUTHOR_EMAIL="bench@example.invalid",
	    GIT_COMMITTER_NAME="bench",
	    GIT_COMMITTER_EMAIL="bench@example.invalid")
	ok = False
	t0 = time.time()
	try:
		res = {"t0": t0, "load0": loadavg()}
		say("bench: work folder %s" % W)
		if ONLY_9:
			say("bench: 9 deploys through nginx, %d runs" % RUNS)
			fd_bench(res)
			report(res, machine())
			ok = True
			return 0
		if ONLY_TREE:
			say("bench: 4t submodule + LFS redeploys, %d runs" % RUNS)
			tree_bench(res)
			report(res, machine())
			ok = True
			return 0
		if ONLY_SV:
			say("bench: 3p and 4c, a program under supervisord, %d quick "
			    "runs, %d redeploys" % (FAST, RUNS))
			sv_bench(res)
			report(res, machine())
			ok = True
			return 0
		if ONLY_8:
			say("bench: 8 deploys under load, %d runs" % RUNS)
			zd_bench(res)
			report(res, machine())
			ok = True
			return 0
		say("bench: wheels")
		_, out = run([sys.executable, os.path.join(HERE, "mkwheels.py"),
		    os.path.join(W, "wheels"), str(max(RUNS, 5) + 1)], capture=True,
		    log="wheels.log")
		pins = out.split()
		if ONLY_POETRY:
			say("bench: 10 poetry.lock bumps, %d runs" % RUNS)
			poetry_bench(res, os.path.join(W, "wheels"), pins)
			report(res, machine())
			ok = True
			return 0
		app = os.path.join(W, "app")
		url = "file://" + app
		sha = make_app(app, pins)
		ours, post = os.path.join(W, "ours"), os.path.join(W, "post")
		say("bench: first deploy of both roots")
		setup_ours(ours, url, "test = python manage.py test\nkeep = %d\n" %
		    (5 if PRUNE_IN_DEPLOYS else 100))
		run(deploy(ours, "deploy"), log="ours.log")
		cold = os.path.join(W, "cold")
		if not ONLY_5B:
			setup_ours(cold, url, "test = python manage.py test\n"
			    "keep = %d\nreuse_venv = no\n" % (5 if PRUNE_IN_DEPLOYS
			    else 100))
			run(deploy(cold, "deploy"), log="cold.log")
		setup_post(post, url, sha)
		expect_current(ours, sha, "first deploy", "v0")
		expect_current(post, sha, "post's first release", "v0")
		info = "%s\napp: %d wheels, %d modules installed; release checkout " \
		    "%d files; remote %s" % (machine(), len(pins), sum(
			1 for rt, _, fs in os.walk(os.path.join(ours, "venvs"))
			for f in fs if f.endswith(".py") and "bd_" in rt),
			count_files(os.path.join(ours, "releases", sha)), "file://")
		if ONLY_5B:
			say("bench: 5b dependency bumps, %d runs" % max(RUNS, 5))
			bump_bench(url, app, pins, ours, post, res)
			report(res, info)
			ok = True
			return 0
		say("bench: 4-5 code-only and cold deploys, %d runs" % RUNS)
		deploy_bench(url, app, pins, ours, post, cold, res)
		if ONLY_5:
			report(res, info)
			ok = True
			return 0
		say("bench: 4t submodule + LFS redeploys, %d runs" % RUNS)
		tree_bench(res)
		say("bench: 3 no-op deploy vs git fetch, %d runs" % FAST)
		noop_bench(ours, res)
		say("bench: 1-2 switches, %d runs of %d" % (RUNS, SWITCHES))
		switch_bench(ours, post, res)
		say("bench: 6 prune of %d files, %d runs" % (PRUNE_FILES, RUNS))
		prune_bench(url, app, res)
		say("bench: 7 peak RSS")
		rss_bench(url, app, pins, ours, res)
		say("bench: 8 deploys under load, %d runs" % RUNS)
		zd_bench(res)
		say("bench: 3p and 4c, a program under supervisord, %d quick "
		    "runs, %d redeploys" % (FAST, RUNS))
		sv_bench(res)
		say("bench: 10 poetry.lock bumps, %d runs" % RUNS)
		poetry_bench(res, os.path.join(W, "wheels"), pins)
		say("bench: 9 deploys through nginx, %d runs" % RUNS)
		fd_bench(res)
		say("bench: done in %.0fs" % (time.time() - t0))
		report(res, info)
		ok = True
	except Broken as e:
		say("bench: BROKEN: %s" % e)
	except KeyboardInterrupt:
		say("bench: interrupted")
	finally:
		if ok and os.environ.get("BENCH_KEEP") != "1":
			t1 = time.time()
			subprocess.run(["chmod", "-R", "u+rwX", W])
			subprocess.run(["rm", "-rf", W])
			say("bench: removed the work folder in %.0fs" % (time.time() - t1))
		else:
			say("bench: kept %s (logs in %s)" % (W, LOGS))
	return 0 if ok else 1


if __name__ == "__main__":
	sys.exit(main())
