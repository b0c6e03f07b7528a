"""A real HTTP server for webhook tests: it records every request (method, path, headers, body)
and answers with the statuses it is told, in order (the last one repeats)."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Listener:
    def __init__(self, statuses=(200,), headers=None, gated=False):
        self.statuses = list(statuses)
        self.headers = headers or {}
        self.requests = []
        self.lock = threading.Lock()
        # gated: each request is recorded at once, answered only after `gate.set()` (or never,
        # which a client's timeout then ends)
        self.gate = threading.Event()
        if not gated:
            self.gate.set()
        listener = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - the http.server spelling
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with listener.lock:
                    listener.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                    index = min(len(listener.requests), len(listener.statuses)) - 1
                    status = listener.statuses[index]
                listener.gate.wait(timeout=60)
                self.send_response(status)
                for name, value in listener.headers.items():
                    self.send_header(name, value)
                reply = json.dumps({"received": len(listener.requests)}).encode()
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self):
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def bodies(self):
        return [json.loads(request["body"]) for request in self.requests]

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.gate.set()
        self.server.shutdown()
        self.server.server_close()
