"""A loopback HTTP listener for notify tests.  usage: listener.py PORTFILE LOG

Answers every POST with 200 and appends its path and body as one line to
LOG; writes the port it listens on to PORTFILE.  Ends by itself after 300 s.
"""
import http.server
import sys
import threading


class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with open(sys.argv[2], "ab") as f:
            f.write(self.path.encode() + b" " + body.replace(b"\n", b" ") + b"\n")
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
with open(sys.argv[1] + ".tmp", "w") as f:
    f.write("%d\n" % server.server_address[1])
import os
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
threading.Timer(300, server.shutdown).start()
server.serve_forever()
