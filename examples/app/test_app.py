"""The app's tests: deploy runs them (python -m unittest) before a switch."""
import unittest
from wsgiref.util import setup_testing_defaults

import app


class AppTest(unittest.TestCase):
    def test_greets(self):
        environ = {}
        setup_testing_defaults(environ)
        seen = []
        body = b"".join(app.app(environ, lambda s, h: seen.append(s)))
        self.assertEqual(seen, ["200 OK"])
        self.assertTrue(body.startswith(b"hello from v"), body)


if __name__ == "__main__":
    unittest.main()
