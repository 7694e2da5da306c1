#!/usr/bin/env python3
"""Write a minimal, valid pure-Python wheel without setuptools or network.

usage: mkwheel.py OUTDIR NAME VERSION [--script CMD] [--requires REQ]...
                  [--extra EXTRA]...

The wheel holds one module, NAME.py, defining VERSION (and main(), which
prints "NAME VERSION"); its dist-info has METADATA, WHEEL and a RECORD with
sha256 hashes, so pip installs it like any wheel from PyPI.  --script CMD
adds a console_scripts entry point CMD = NAME:main; --requires REQ a
Requires-Dist line; --extra EXTRA a Provides-Extra line (pip ignores an
extra a wheel does not provide).  Prints the wheel's path.
"""
import base64
import hashlib
import os
import sys
import zipfile


def record_line(path, data):
	digest = hashlib.sha256(data).digest()
	b64 = base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
	return "%s,sha256=%s,%d" % (path, b64, len(data))


def main():
	usage = ("usage: mkwheel.py OUTDIR NAME VERSION [--script CMD] "
		 "[--requires REQ]... [--extra EXTRA]...")
	args = sys.argv[1:]
	if len(args) < 3 or len(args) % 2 == 0:
		sys.exit(usage)
	outdir, name, version = args[:3]
	scripts, requires, extras = [], [], []
	for opt, val in zip(args[3::2], args[4::2]):
		if opt == "--script":
			scripts.append(val)
		elif opt == "--requires":
			requires.append(val)
		elif opt == "--extra":
			extras.append(val)
		else:
			sys.exit(usage)
	dist = name.replace("-", "_")
	info = "%s-%s.dist-info" % (dist, version)
	module = ('"""Test dependency installed by deploy\'s pip step."""\n'
		  'VERSION = "%s"\n' % version)
	if scripts:
		module += ("\n\ndef main():\n"
			   "    print(\"%s \" + VERSION)\n" % name)
	meta = ("Metadata-Version: 2.1\nName: %s\nVersion: %s\n"
		"Summary: test wheel for deploy\n" % (name, version))
	meta += "".join("Provides-Extra: %s\n" % x for x in extras)
	meta += "".join("Requires-Dist: %s\n" % r for r in requires)
	files = [
		("%s.py" % dist, module.encode()),
		(info + "/METADATA", meta.encode()),
		(info + "/WHEEL",
		 b"Wheel-Version: 1.0\nGenerator: deploy-test-mkwheel\n"
		 b"Root-Is-Purelib: true\nTag: py3-none-any\n"),
	]
	if scripts:
		files.append((info + "/entry_points.txt",
			      ("[console_scripts]\n" + "".join(
				      "%s = %s:main\n" % (c, dist)
				      for c in scripts)).encode()))
	record = [record_line(p, d) for p, d in files]
	record.append(info + "/RECORD,,")
	files.append((info + "/RECORD", ("\n".join(record) + "\n").encode()))

	os.makedirs(outdir, exist_ok=True)
	path = os.path.join(outdir, "%s-%s-py3-none-any.whl" % (dist, version))
	tmp = path + ".tmp"
	with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as z:
		for p, d in files:
			z.writestr(p, d)
	os.rename(tmp, path)
	print(path)


if __name__ == "__main__":
	main()
