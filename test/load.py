#!/usr/bin/env python3
"""HTTP clients on loopback that count failed requests during a deploy.

usage: load.py URL STOPFILE RESULTFILE [THREADS [SECONDS [MAXREQ [PAUSE_MS]]]]

THREADS threads (default 4) each GET URL over a new connection, again and
again with a pause of PAUSE_MS (default 5) between, until STOPFILE
appears, SECONDS pass (default 120) or MAXREQ requests were made in all
(default 200000).  Each request has a 5 s timeout; anything but a 200
answer is a failure.  Writes to RESULTFILE (renamed into place at the
end):
    ok=N failed=N gap_ms=N versions=v1,v2
gap_ms is the longest time between two successful answers (any thread).
The first lines of failures follow, one a line.  RESULTFILE.ready is
written once the first answer came back.
"""
import os
import sys
import threading
import time
import urllib.request


def main():
	url, stop, result = sys.argv[1:4]
	nthreads = int(sys.argv[4]) if len(sys.argv) > 4 else 4
	deadline = time.monotonic() + (float(sys.argv[5])
	    if len(sys.argv) > 5 else 120)
	maxreq = int(sys.argv[6]) if len(sys.argv) > 6 else 200000
	pause = (float(sys.argv[7]) if len(sys.argv) > 7 else 5) / 1000
	lock = threading.Lock()
	st = {"n": 0, "ok": 0, "failed": 0, "versions": set(), "times": [],
	    "errors": [], "ready": False}

	def client():
		while not os.path.exists(stop) and time.monotonic() < deadline:
			with lock:
				if st["n"] >= maxreq:
					return
				st["n"] += 1
			try:
				with urllib.request.urlopen(url, timeout=5) as r:
					body = r.read().decode().strip()
					good = r.status == 200
			except Exception as e:
				body, good = "%s: %s" % (type(e).__name__, e), False
			t = time.monotonic()
			with lock:
				if good:
					st["ok"] += 1
					st["versions"].add(body)
					st["times"].append(t)
					if not st["ready"]:
						st["ready"] = True
						open(result + ".ready", "w").close()
				else:
					st["failed"] += 1
					if len(st["errors"]) < 20:
						st["errors"].append(body)
			time.sleep(pause)

	threads = [threading.Thread(target=client) for _ in range(nthreads)]
	for t in threads:
		t.start()
	for t in threads:
		t.join()
	times = sorted(st["times"])
	gap = max((b - a for a, b in zip(times, times[1:])), default=0)
	with open(result + ".tmp", "w") as f:
		f.write("ok=%d failed=%d gap_ms=%d versions=%s\n" % (st["ok"],
		    st["failed"], gap * 1000, ",".join(sorted(st["versions"]))))
		for e in st["errors"]:
			f.write(e.replace("\n", " ") + "\n")
	os.rename(result + ".tmp", result)


if __name__ == "__main__":
	main()
