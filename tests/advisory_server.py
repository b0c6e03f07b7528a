"""A small npm registry with an advisory service, for tests/upstreams.AdvisoryUpstream (run as a
script: `advisory_server.py PORT DIRECTORY ADVISORIES LOG`).

- GET/HEAD: the files under DIRECTORY (packuments as `<name>`, tarballs as `<name>/-/<file>`).
- POST `/-/npm/v1/security/advisories/bulk`: for each name of the (gzip-decoded) body, the
  advisories ADVISORIES (a JSON file: {name: [advisory]}) lists for it, as registry.npmjs.org
  answers; `audits/quick`: ADVISORIES' `"quick"` entry. When ADVISORIES has `"status"`, that
  status and an error body instead.
- Every POST is appended to LOG as one JSON line: path, Content-Encoding, Authorization, body
  (decoded, as text).
"""

import functools
import gzip
import json
import sys
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer


class Handler(SimpleHTTPRequestHandler):
    advisories = None
    log = None

    def do_POST(self):  # noqa: N802 - http.server's naming
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        encoding = self.headers.get("Content-Encoding", "")
        body = gzip.decompress(raw) if encoding == "gzip" else raw
        record = {
            "path": self.path,
            "content_encoding": encoding,
            "authorization": self.headers.get("Authorization", ""),
            "body": body.decode(errors="replace"),
        }
        with open(self.log, "a") as log:
            log.write(json.dumps(record) + "\n")
        with open(self.advisories) as source:
            known = json.load(source)
        if "status" in known:
            self.answer(known["status"], {"error": "advisory service failure"})
        elif self.path == "/-/npm/v1/security/advisories/bulk":
            asked = json.loads(body)
            self.answer(200, {name: known[name] for name in asked if name in known})
        elif self.path == "/-/npm/v1/security/audits/quick":
            self.answer(200, known.get("quick", {}))
        else:
            self.answer(404, {"error": "not found"})

    def answer(self, status, document):
        data = json.dumps(document).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def main():
    port, directory, advisories, log = sys.argv[1:5]
    Handler.advisories, Handler.log = advisories, log
    handler = functools.partial(Handler, directory=directory)
    ThreadingHTTPServer(("127.0.0.1", int(port)), handler).serve_forever()


if __name__ == "__main__":
    main()
