"""A listener on a unix socket that is not supervisord, for 53-supervisor-rpc.t.

svlisten.py SOCKET MODE: binds SOCKET and serves every connection as MODE
says: "hang" accepts and never answers; "half" reads the request, sends
half an answer (its header promises more) and closes; "junk" answers
HTTP 200 with a body that is no XML-RPC; "stale" binds and exits at once,
leaving a socket nobody listens on (connecting is refused)."""
import socket
import sys

path, mode = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(path)
if mode == "stale":
    sys.exit(0)
s.listen(16)
held = []


def read_request(c):
    """The whole request, its body as long as Content-Length says: an
    answer before the body is read would make the sender's write fail
    (EPIPE) instead of showing what this mode means to show."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        got = c.recv(65536)
        if not got:
            return
        buf += got
    head, body = buf.split(b"\r\n\r\n", 1)
    n = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            n = int(line.split(b":", 1)[1])
    while len(body) < n:
        got = c.recv(65536)
        if not got:
            return
        body += got


while True:
    c, _ = s.accept()
    if mode == "hang":
        held.append(c)
        continue
    read_request(c)
    if mode == "half":
        c.sendall(b"HTTP/1.0 200 OK\r\nContent-Type: text/xml\r\n"
                  b"Content-Length: 400\r\n\r\n<?xml version='1.0'?>\n"
                  b"<methodResponse>\n<params>\n<param>\n<value><str")
    else:
        c.sendall(b"HTTP/1.0 200 OK\r\nContent-Type: text/xml\r\n\r\n"
                  b"<methodResponse><params><param><value><int>3.0</int>"
                  b"</value></param></params></methodResponse>\n")
    c.close()
