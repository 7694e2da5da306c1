"""A tiny web app for `make demo`: the standard library's wsgiref only.

python app.py PORT serves it on 127.0.0.1:PORT.
"""
import os
import sys
from wsgiref.simple_server import WSGIRequestHandler, make_server

HERE = os.path.dirname(os.path.abspath(__file__))


def version():
    with open(os.path.join(HERE, "VERSION")) as f:
        return f.read().strip()


def greeting():
    return "hello from v%s" % version()


def app(environ, start_response):
    body = (greeting() + "\n").encode()
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(body)))])
    return [body]


class QuietHandler(WSGIRequestHandler):
    def log_message(self, *args):
        pass


if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8000
    make_server("127.0.0.1", port, app,
                handler_class=QuietHandler).serve_forever()
