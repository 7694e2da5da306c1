"""A PEP 503 simple index of the wheels in DIR, served on 127.0.0.1.

usage: pep503.py DIR PORTFILE

Lists DIR afresh on each request, so wheels added later are offered too;
links carry #sha256= fragments, as PyPI's do. Writes the port it got to
PORTFILE (by rename, so a reader never sees half of it).
"""
import functools
import hashlib
import http.server
import os
import sys


def dists(d):
	names = {}
	for f in sorted(os.listdir(d)):
		if f.endswith(".whl"):
			n = f.split("-")[0].lower().replace("_", "-")
			names.setdefault(n, []).append(f)
	return names


class Index(http.server.SimpleHTTPRequestHandler):
	def log_message(self, *a):
		pass

	def page(self, body):
		b = ("<!DOCTYPE html><html><body>\n%s</body></html>\n" %
		     body).encode()
		self.send_response(200)
		self.send_header("Content-Type", "text/html")
		self.send_header("Content-Length", str(len(b)))
		self.end_headers()
		self.wfile.write(b)

	def do_GET(self):
		d = self.directory
		parts = [p for p in self.path.split("/") if p]
		names = dists(d)
		if parts == ["simple"]:
			return self.page("".join('<a href="/simple/%s/">%s</a>\n' %
						 (n, n) for n in names))
		if len(parts) == 2 and parts[0] == "simple" and parts[1] in names:
			links = []
			for f in names[parts[1]]:
				with open(os.path.join(d, f), "rb") as fh:
					h = hashlib.sha256(fh.read()).hexdigest()
				links.append('<a href="/files/%s#sha256=%s">%s</a>\n' %
					     (f, h, f))
			return self.page("".join(links))
		if len(parts) == 2 and parts[0] == "files":
			self.path = "/" + parts[1]
			return super().do_GET()
		self.send_error(404)


def main():
	d, portfile = sys.argv[1], sys.argv[2]
	s = http.server.HTTPServer(("127.0.0.1", 0),
				   functools.partial(Index, directory=d))
	with open(portfile + ".tmp", "w") as f:
		f.write("%d\n" % s.server_address[1])
	os.rename(portfile + ".tmp", portfile)
	s.serve_forever()


if __name__ == "__main__":
	main()
