#!/usr/bin/env python3
"""Ask supervisord, over its unix socket, what state a program is in.

usage: svstate.py SOCKET PROGRAM

Prints "STATE PID" (PID 0 when none), as `supervisorctl status` would say,
using the same XML-RPC call, without supervisorctl's start-up cost.
Prints "UNKNOWN 0" when supervisord does not answer.
"""
import http.client
import socket
import sys
import xmlrpc.client


class UnixConnection(http.client.HTTPConnection):
	def __init__(self, path):
		super().__init__("localhost", timeout=10)
		self.unix_path = path

	def connect(self):
		s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
		s.settimeout(10)
		s.connect(self.unix_path)
		self.sock = s


class UnixTransport(xmlrpc.client.Transport):
	def __init__(self, path):
		super().__init__()
		self.unix_path = path

	def make_connection(self, host):
		return UnixConnection(self.unix_path)


def main():
	path, program = sys.argv[1:]
	proxy = xmlrpc.client.ServerProxy("http://localhost",
	    transport=UnixTransport(path))
	try:
		info = proxy.supervisor.getProcessInfo(program)
	except Exception:
		print("UNKNOWN 0")
		return
	print(info["statename"], info["pid"])


if __name__ == "__main__":
	main()
