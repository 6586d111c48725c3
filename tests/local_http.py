"""A file server on 127.0.0.1 for the download tests: serves bytes the test writes, honours HTTP Range, and
can drop a connection part-way, answer 404, or record every request it saw."""

import contextlib
import http.server
import threading


class Files:
    """What the server serves ({url path: bytes}) and how it misbehaves; `requests` logs (path, Range)."""

    def __init__(self, files=None):
        self.files = dict(files or {})
        self.drop_after = {}  # path -> bytes sent before the connection is cut, on the first request only
        self.requests = []


def _handler(state):
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def do_GET(self):  # noqa: N802 - the name http.server calls
            range_header = self.headers.get("Range")
            state.requests.append((self.path, range_header))
            data = state.files.get(self.path)
            if data is None:
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            start = int(range_header.split("=")[1].split("-")[0]) if range_header else 0
            body = data[start:]
            self.send_response(206 if range_header else 200)
            self.send_header("Content-Length", str(len(body)))
            if range_header:
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            self.end_headers()
            cut = state.drop_after.pop(self.path, None)
            if cut is not None:
                self.wfile.write(body[:cut])
                self.wfile.flush()
                self.close_connection = True
                self.connection.shutdown(2)  # the client sees fewer bytes than Content-Length
                return
            self.wfile.write(body)

    return Handler


@contextlib.contextmanager
def serve(state):
    """Serve `state` (a Files) on a free port of 127.0.0.1; yields the base URL."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def closed_port_url():
    """A URL on 127.0.0.1 where nothing listens (connection refused at once)."""
    import socket
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"
