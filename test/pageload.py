#!/usr/bin/env python3
"""Browsers on loopback: a page, then the asset it names, during a deploy.

usage: pageload.py URL STOPFILE RESULTFILE [THREADS [SECONDS [MAXPAGES [PAUSE]]]]

THREADS threads (default 4) each GET URL (the page: "VERSION ASSETPATH",
e.g. "v2 /static/app.3f2a9c.css"), then the asset it names from the same
server, each over a new connection, again and again with a pause of
PAUSE ms (default 5),
until STOPFILE appears, SECONDS pass (default 120) or MAXPAGES pages were
asked for (default 100000).  5 s timeout a request; anything but a 200
fails.  An asset whose body does not hold the page's VERSION is
"mismatched": the page got another release's file.  Writes RESULTFILE
(renamed into place at the end):
    pages=N pages_failed=N assets=N assets_failed=N mismatched=N versions=v1,v2
then the first failures, one a line.  RESULTFILE.ready is written once the
first page and its asset came back.
"""
import os
import sys
import threading
import time
import urllib.parse
import urllib.request


def get(url):
	"""(status or None, body or error text)"""
	try:
		with urllib.request.urlopen(url, timeout=5) as r:
			return r.status, r.read().decode(errors="replace")
	except urllib.error.HTTPError as e:
		return e.code, "HTTP %d" % e.code
	except Exception as e:
		return None, "%s: %s" % (type(e).__name__, e)


def main():
	url, stop, result = sys.argv[1:4]
	nthreads = int(sys.argv[4]) if len(sys.argv) > 4 else 4
	deadline = time.monotonic() + (float(sys.argv[5])
	    if len(sys.argv) > 5 else 120)
	maxpages = int(sys.argv[6]) if len(sys.argv) > 6 else 100000
	pause = (float(sys.argv[7]) if len(sys.argv) > 7 else 5) / 1000
	lock = threading.Lock()
	st = {"n": 0, "pages": 0, "pages_failed": 0, "assets": 0,
	    "assets_failed": 0, "mismatched": 0, "versions": set(),
	    "errors": [], "ready": False}

	def note(key, msg=None):
		st[key] += 1
		if msg and len(st["errors"]) < 20:
			st["errors"].append(msg)

	def client():
		while not os.path.exists(stop) and time.monotonic() < deadline:
			with lock:
				if st["n"] >= maxpages:
					return
				st["n"] += 1
			code, body = get(url)
			words = body.split() if code == 200 else []
			if len(words) != 2 or not words[1].startswith("/"):
				with lock:
					note("pages_failed", "page: %s" % body[:200])
				time.sleep(pause)
				continue
			version, asset = words
			acode, abody = get(urllib.parse.urljoin(url, asset))
			with lock:
				st["pages"] += 1
				st["versions"].add(version)
				if acode != 200:
					note("assets_failed", "%s %s: %s" % (version,
					    asset, abody[:200]))
				elif version not in abody.split():
					note("mismatched", "%s %s holds %s" % (version,
					    asset, abody[:200]))
				else:
					st["assets"] += 1
					if not st["ready"]:
						st["ready"] = True
						open(result + ".ready", "w").close()
			time.sleep(pause)

	threads = [threading.Thread(target=client) for _ in range(nthreads)]
	for t in threads:
		t.start()
	for t in threads:
		t.join()
	with open(result + ".tmp", "w") as f:
		f.write("pages=%d pages_failed=%d assets=%d assets_failed=%d "
		    "mismatched=%d versions=%s\n" % (st["pages"],
		    st["pages_failed"], st["assets"], st["assets_failed"],
		    st["mismatched"], ",".join(sorted(st["versions"]))))
		for e in st["errors"]:
			f.write(e.replace("\n", " ") + "\n")
	os.rename(result + ".tmp", result)


if __name__ == "__main__":
	main()
