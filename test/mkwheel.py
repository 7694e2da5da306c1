#!/usr/bin/env python3
"""Write a minimal, valid pure-Python wheel without setuptools or network.

usage: mkwheel.py OUTDIR NAME VERSION

The wheel holds one module, NAME.py, defining VERSION; its dist-info has
METADATA, WHEEL and a RECORD with sha256 hashes, so pip installs it like any
wheel from PyPI.  Prints the wheel's path.
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
	if len(sys.argv) != 4:
		sys.exit("usage: mkwheel.py OUTDIR NAME VERSION")
	outdir, name, version = sys.argv[1:]
	dist = name.replace("-", "_")
	info = "%s-%s.dist-info" % (dist, version)
	files = [
		("%s.py" % dist,
		 ('"""Test dependency installed by deploy\'s pip step."""\n'
		  'VERSION = "%s"\n' % version).encode()),
		(info + "/METADATA",
		 ("Metadata-Version: 2.1\nName: %s\nVersion: %s\n"
		  "Summary: test wheel for deploy\n" % (name, version)).encode()),
		(info + "/WHEEL",
		 b"Wheel-Version: 1.0\nGenerator: deploy-test-mkwheel\n"
		 b"Root-Is-Purelib: true\nTag: py3-none-any\n"),
	]
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
