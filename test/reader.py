#!/usr/bin/env python3
"""Read ROOT/current/VERSION over and over until STOPFILE appears.

usage: reader.py ROOT STOPFILE RESULTFILE

Each read must find current resolving to a release that has its VERSION
and its virtualenv's python.  Writes "READS FAILURES" and then the first
failures, one a line, to RESULTFILE.  A missing current before the first
successful read is not counted (the root may not be deployed yet).
"""
import os
import sys
import time


def main():
	root, stop, result = sys.argv[1:]
	version = os.path.join(root, "current", "VERSION")
	python = os.path.join(root, "current", ".venv", "bin", "python")
	reads = 0
	failures = []
	nfail = 0
	seen = False
	# a read is an open, a read and a close, and a stat of the python:
	# no file object, and the stop file looked for every 50th time, so
	# that the reads cost little CPU (two of these run for minutes)
	while reads % 50 or not os.path.exists(stop):
		try:
			fd = os.open(version, os.O_RDONLY)
			try:
				data = os.read(fd, 4096)
			finally:
				os.close(fd)
			if not data.strip():
				raise OSError("VERSION is empty")
			try:
				os.stat(python)
			except OSError:
				raise OSError("no .venv/bin/python")
			seen = True
		except OSError as e:
			if seen:
				nfail += 1
				if len(failures) < 20:
					failures.append("%.3f %s -> %s: %s" % (time.time(),
					    version, os.path.realpath(version), e))
		reads += 1
		time.sleep(0.002)
	with open(result + ".tmp", "w") as f:
		f.write("%d %d\n" % (reads, nfail))
		for line in failures:
			f.write(line + "\n")
	os.rename(result + ".tmp", result)


if __name__ == "__main__":
	main()
