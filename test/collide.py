#!/usr/bin/env python3
"""Make two commits whose shas share their first 7 hex digits.

usage: collide.py REPO

Both are children of REPO's HEAD with its tree; only the message differs.
A birthday search over 28 bits takes some 20,000 sha1s.  The commits are
written with git hash-object and named by branches collide-a and collide-b;
their shas are printed, one a line.
"""
import hashlib
import subprocess
import sys


def git(repo, *args, data=None):
	return subprocess.run(("git", "-C", repo) + args, input=data, check=True,
	    stdout=subprocess.PIPE).stdout.decode().strip()


def main():
	repo = sys.argv[1]
	tree = git(repo, "rev-parse", "HEAD^{tree}")
	parent = git(repo, "rev-parse", "HEAD")
	seen = {}
	n = 0
	while True:
		body = ("tree %s\nparent %s\n"
		    "author deploy-test <t@example.invalid> 1700000000 +0000\n"
		    "committer deploy-test <t@example.invalid> 1700000000 +0000\n"
		    "\ncollide %d\n" % (tree, parent, n)).encode()
		sha = hashlib.sha1(b"commit %d\0" % len(body) + body).hexdigest()
		if sha[:7] in seen:
			break
		seen[sha[:7]] = body
		n += 1
	for branch, b in (("collide-a", seen[sha[:7]]), ("collide-b", body)):
		got = git(repo, "hash-object", "-t", "commit", "-w", "--stdin", data=b)
		git(repo, "branch", "-f", branch, got)
		print(got)


if __name__ == "__main__":
	main()
