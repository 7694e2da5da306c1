#!/usr/bin/env python3
"""supervisorctl's few commands the tests need, over supervisord's socket.

usage: svctl.py SOCKET COMMAND [NAME...]

  state NAME       prints "STATE PID" (PID 0 when none; "UNKNOWN 0" when
                   supervisord does not answer), as svstate.py does
  status [NAME]... a line per process, in supervisorctl status's layout;
                   NAME may be GROUP:* or GROUP:NAME
  start NAME       startProcess, waiting for the outcome
  stop NAME        stopProcess, waiting
  restart NAME     stop (when running) then start

The same XML-RPC calls supervisorctl makes, without its start-up cost
(loading supervisor and pkg_resources: about 0.27 s of CPU a run). For the
tests' own looks and chores only: where a test is about what an admin
types, it runs supervisorctl itself. Exit status 0, or 1 with supervisord's
fault on stderr.
"""
import socket
import sys
import xml.etree.ElementTree as ET


class Fault(Exception):
	def __init__(self, code, string):
		super().__init__(string)
		self.faultString = string


def xml_value(p):
	if isinstance(p, bool):
		return "<value><boolean>%d</boolean></value>" % p
	if isinstance(p, int):
		return "<value><int>%d</int></value>" % p
	p = p.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
	return "<value><string>%s</string></value>" % p


def py_value(v):
	if len(v) == 0:
		return v.text or ""
	t = v[0]
	if t.tag in ("int", "i4", "i8"):
		return int(t.text)
	if t.tag == "boolean":
		return t.text.strip() == "1"
	if t.tag == "double":
		return float(t.text)
	if t.tag == "array":
		return [py_value(x) for x in t.findall("data/value")]
	if t.tag == "struct":
		return {m.findtext("name"): py_value(m.find("value"))
			for m in t.findall("member")}
	return t.text or ""


class Proxy:
	"""XML-RPC over supervisord's unix socket, with nothing but socket
	and ElementTree: xmlrpc.client and http.client cost twice the
	start-up of the whole script"""

	def __init__(self, path):
		self.path = path

	def call(self, method, *params):
		body = ("<?xml version='1.0'?><methodCall><methodName>%s"
			"</methodName><params>%s</params></methodCall>" % (
				method, "".join("<param>%s</param>" % xml_value(p)
						for p in params))).encode()
		s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
		s.settimeout(10)
		try:
			s.connect(self.path)
			s.sendall(b"POST /RPC2 HTTP/1.0\r\nHost: localhost\r\n"
				  b"Content-Type: text/xml\r\nContent-Length: %d"
				  b"\r\n\r\n%s" % (len(body), body))
			chunks = []
			while True:
				c = s.recv(65536)
				if not c:
					break
				chunks.append(c)
		finally:
			s.close()
		head, _, data = b"".join(chunks).partition(b"\r\n\r\n")
		if b" 200 " not in head.split(b"\r\n")[0] + b" ":
			raise OSError("HTTP: %r" % head[:80])
		root = ET.fromstring(data)
		fault = root.find("fault/value")
		if fault is not None:
			f = py_value(fault)
			raise Fault(f.get("faultCode"), f.get("faultString", ""))
		return py_value(root.find("params/param/value"))


def full_name(info):
	if info["group"] == info["name"]:
		return info["name"]
	return "%s:%s" % (info["group"], info["name"])


def status(proxy, names):
	infos = proxy.call("supervisor.getAllProcessInfo")
	ok = True
	for want in names or [None]:
		hit = [i for i in infos if want is None or want in (
			full_name(i), i["group"] + ":*") or (
			want == i["name"] and i["group"] == i["name"])]
		if not hit:
			print("%s: ERROR (no such process)" % want)
			ok = False
		for i in hit:
			print("%-32s %-10s%s" % (full_name(i), i["statename"],
						  i["description"]))
	return ok


def main():
	if len(sys.argv) < 3:
		sys.exit(__doc__.split("\n\n")[1])
	path, cmd, names = sys.argv[1], sys.argv[2], sys.argv[3:]
	proxy = Proxy(path)
	if cmd == "state":
		try:
			info = proxy.call("supervisor.getProcessInfo", names[0])
		except Exception:
			print("UNKNOWN 0")
			return 0
		print(info["statename"], info["pid"])
		return 0
	try:
		if cmd == "status":
			return 0 if status(proxy, names) else 1
		if cmd not in ("start", "stop", "restart") or len(names) != 1:
			sys.exit(__doc__.split("\n\n")[1])
		name = names[0]
		if cmd in ("stop", "restart"):
			try:
				proxy.call("supervisor.stopProcess", name, True)
			except Fault as e:
				if cmd == "stop" or "NOT_RUNNING" not in e.faultString:
					raise
		if cmd in ("start", "restart"):
			proxy.call("supervisor.startProcess", name, True)
		print("%s: %s" % (name, "stopped" if cmd == "stop" else "started"))
	except Fault as e:
		print("%s: ERROR (%s)" % (" ".join(names), e.faultString),
		      file=sys.stderr)
		return 1
	except (OSError, ET.ParseError) as e:
		print("svctl: %s: %s" % (path, e), file=sys.stderr)
		return 1
	return 0


if __name__ == "__main__":
	sys.exit(main())
