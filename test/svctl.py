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
import sys
import xmlrpc.client

from svstate import UnixTransport


def full_name(info):
	if info["group"] == info["name"]:
		return info["name"]
	return "%s:%s" % (info["group"], info["name"])


def status(proxy, names):
	infos = proxy.supervisor.getAllProcessInfo()
	ok = True
	for want in names or [None]:
		hit = [i for i in infos if want is None or want in (
			full_name(i), i["group"] + ":*") or (
			want == i["name"] and i["group"] == i["name"])]
		if not hit:
			print("%s: ERROR (no such process)" % want)
			ok = False
		for i in hit:
			print("%-32s %-10s %s" % (full_name(i), i["statename"],
						  i["description"]))
	return ok


def main():
	if len(sys.argv) < 3:
		sys.exit(__doc__.split("\n\n")[1])
	path, cmd, names = sys.argv[1], sys.argv[2], sys.argv[3:]
	proxy = xmlrpc.client.ServerProxy("http://localhost",
	    transport=UnixTransport(path))
	if cmd == "state":
		try:
			info = proxy.supervisor.getProcessInfo(names[0])
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
				proxy.supervisor.stopProcess(name, True)
			except xmlrpc.client.Fault as e:
				if cmd == "stop" or "NOT_RUNNING" not in e.faultString:
					raise
		if cmd in ("start", "restart"):
			proxy.supervisor.startProcess(name, True)
		print("%s: %s" % (name, "stopped" if cmd == "stop" else "started"))
	except xmlrpc.client.Fault as e:
		print("%s: ERROR (%s)" % (" ".join(names), e.faultString),
		      file=sys.stderr)
		return 1
	except OSError as e:
		print("svctl: %s: %s" % (path, e), file=sys.stderr)
		return 1
	return 0


if __name__ == "__main__":
	sys.exit(main())
