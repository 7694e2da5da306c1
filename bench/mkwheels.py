#!/usr/bin/env python3
"""Write the benchmark app's dependency set as wheels, with no setuptools
and no network: ~30 pure-Python packages, ~3,000 modules in all, shaped
like a web app's pinned requirements (a few large frameworks, a middle
class of libraries, a tail of small helpers).

usage: mkwheels.py OUTDIR [EXTRA_VERSIONS]

Every wheel is a zip with NAME/..., NAME-VER.dist-info/{METADATA,WHEEL,
top_level.txt,RECORD} and RECORD lists each file's sha256, as PyPI's do.
One small package, bd-settings, is written in versions 1.0.0 ..
1.0.EXTRA_VERSIONS so that a benchmark can change the requirements (a pin
bump) without changing anything else.  Prints the pinned requirements
(the first version of each) on stdout, one "name==version" a line.
Output is deterministic: the same arguments give byte-identical wheels.
"""
import base64
import hashlib
import os
import random
import sys
import zipfile

# (name, modules, subpackages, requires)
PACKAGES = [
	("bd-webframework", 500, 20, ["bd-urltools", "bd-templates", "bd-sqlparse"]),
	("bd-orm", 380, 14, ["bd-sqlparse", "bd-dateutil"]),
	("bd-cloudsdk", 300, 12, ["bd-httpclient", "bd-dateutil", "bd-jmespath"]),
	("bd-restframework", 210, 8, ["bd-webframework"]),
	("bd-crypto", 180, 6, ["bd-cffi"]),
	("bd-httpclient", 150, 6, ["bd-urltools", "bd-certifi", "bd-idna",
	    "bd-charset"]),
	("bd-templates", 120, 4, ["bd-markupsafe"]),
	("bd-celery", 140, 6, ["bd-kombu", "bd-dateutil"]),
	("bd-kombu", 110, 5, ["bd-amqp"]),
	("bd-pytz", 95, 3, []),
	("bd-yaml", 60, 2, []),
	("bd-redis", 80, 3, []),
	("bd-psycopg", 70, 3, []),
	("bd-imaging", 90, 3, []),
	("bd-dateutil", 45, 2, ["bd-six"]),
	("bd-sqlparse", 50, 2, []),
	("bd-jmespath", 30, 1, []),
	("bd-amqp", 35, 1, []),
	("bd-urltools", 30, 1, []),
	("bd-idna", 20, 1, []),
	("bd-charset", 40, 2, []),
	("bd-cffi", 40, 2, []),
	("bd-markupsafe", 12, 0, []),
	("bd-certifi", 6, 0, []),
	("bd-six", 4, 0, []),
	("bd-sentry", 110, 5, ["bd-certifi", "bd-urltools"]),
	("bd-gunicorn", 60, 2, []),
	("bd-whitenoise", 25, 1, []),
	("bd-structlog", 35, 1, []),
	("bd-settings", 6, 0, []),	# the one whose pin the benchmark bumps
]

WORDS = ("request response session token cache queue record field value "
    "schema handler parser buffer stream config option result context "
    "client server router model view template filter signal worker task "
    "batch entry index cursor column table query engine pool backend").split()


def ident(rng):
	return "_".join(rng.sample(WORDS, 2))


def module_source(rng, pkg, mod):
	"""~1.5-3 KB of plausible Python: imports, constants, functions, a class."""
	out = ['"""%s.%s: %s %s helpers (generated for the deploy benchmark)."""'
	    % (pkg, mod, rng.choice(WORDS), rng.choice(WORDS)),
	    "import os", "import re", "", "__all__ = []", ""]
	for _ in range(rng.randint(1, 3)):
		out.append("%s = %r" % (ident(rng).upper(),
		    rng.choice([rng.randint(0, 99999), ident(rng), 1.5])))
	out.append("")
	for _ in range(rng.randint(2, 4)):
		name = ident(rng)
		a, b = rng.sample(WORDS, 2)
		out += ["", "def %s(%s, %s=None):" % (name, a, b),
		    '    """Return the %s of %s, or %s when it has none."""' % (
			rng.choice(WORDS), a, b),
		    "    if %s is None:" % a,
		    "        return %s" % b,
		    "    items = [x for x in str(%s).split() if x]" % a,
		    "    return {k: len(k) for k in items} or %s" % b, "",
		    "__all__.append(%r)" % name]
	cls = "".join(w.title() for w in rng.sample(WORDS, 2))
	out += ["", "", "class %s(object):" % cls,
	    '    """A %s that keeps its %s."""' % (rng.choice(WORDS),
		rng.choice(WORDS)), "",
	    "    def __init__(self, *args, **kwargs):",
	    "        self.args = args",
	    "        self.options = dict(kwargs)", "",
	    "    def __repr__(self):",
	    "        return '<%s %%r>' %% (self.args,)" % cls, "",
	    "    def match(self, text):",
	    "        return re.search(%r, text) is not None" % rng.choice(WORDS),
	    "", "", "__all__.append(%r)" % cls, ""]
	return ("\n".join(out) + "\n").encode()


def record_line(path, data):
	digest = hashlib.sha256(data).digest()
	b64 = base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
	return "%s,sha256=%s,%d" % (path, b64, len(data))


def write_wheel(outdir, name, version, nmod, nsub, requires):
	dist = name.replace("-", "_")
	rng = random.Random("%s %s" % (name, version))
	files = []
	# the package and its subpackages; modules spread over them
	subs = [dist] + ["%s/%s" % (dist, ident(rng) + "_%d" % i)
	    for i in range(nsub)]
	for s in subs:
		files.append(("%s/__init__.py" % s,
		    ('"""%s"""\n__version__ = "%s"\n' % (s.replace("/", "."),
			version)).encode()))
	left = nmod - len(subs)
	for i in range(max(left, 0)):
		s = subs[i % len(subs)]
		mod = "%s_%d" % (ident(rng), i)
		files.append(("%s/%s.py" % (s, mod), module_source(rng, dist, mod)))
	files.append(("%s/py.typed" % dist, b""))
	info = "%s-%s.dist-info" % (dist, version)
	meta = ["Metadata-Version: 2.1", "Name: %s" % name,
	    "Version: %s" % version,
	    "Summary: %s, generated for the deploy benchmark" % name,
	    "Requires-Python: >=3.7"]
	meta += ["Requires-Dist: %s>=1.0" % r for r in requires]
	files.append((info + "/METADATA", ("\n".join(meta) + "\n\n").encode()))
	files.append((info + "/WHEEL",
	    b"Wheel-Version: 1.0\nGenerator: deploy-bench-mkwheels\n"
	    b"Root-Is-Purelib: true\nTag: py3-none-any\n"))
	files.append((info + "/top_level.txt", (dist + "\n").encode()))
	record = [record_line(p, d) for p, d in files]
	record.append(info + "/RECORD,,")
	files.append((info + "/RECORD", ("\n".join(record) + "\n").encode()))

	path = os.path.join(outdir, "%s-%s-py3-none-any.whl" % (dist, version))
	tmp = path + ".tmp"
	with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as z:
		for p, d in files:
			zi = zipfile.ZipInfo(p, date_time=(2020, 1, 1, 0, 0, 0))
			zi.compress_type = zipfile.ZIP_DEFLATED
			zi.external_attr = 0o644 << 16
			z.writestr(zi, d)
	os.rename(tmp, path)
	return sum(1 for p, _ in files if p.endswith(".py"))


def main():
	if len(sys.argv) not in (2, 3):
		sys.exit("usage: mkwheels.py OUTDIR [EXTRA_VERSIONS]")
	outdir = sys.argv[1]
	extra = int(sys.argv[2]) if len(sys.argv) == 3 else 0
	os.makedirs(outdir, exist_ok=True)
	total = 0
	for name, nmod, nsub, req in PACKAGES:
		total += write_wheel(outdir, name, "1.0.0", nmod, nsub, req)
		print("%s==1.0.0" % name)
	for v in range(1, extra + 1):
		write_wheel(outdir, "bd-settings", "1.0.%d" % v, 6, 0, [])
	sys.stderr.write("mkwheels: %d wheels, %d modules in %s\n" %
	    (len(PACKAGES), total, outdir))


if __name__ == "__main__":
	main()
