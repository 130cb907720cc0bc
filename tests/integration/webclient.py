"""The web listener from Python: HTTPS with a client certificate, the JSON API and the watch as
server-sent events, plus raw TLS sockets for the attacks that no well-behaved client sends."""

import http.client
import json
import re
import socket
import ssl
import time

from conftest import wait_for

WEB_RE = re.compile(r"web: listening on https://(\[[^\]]+\]|[^\s\[\]/]+):(\d+)/")

WEB_CONFIG = {"web": {"listen": "127.0.0.1:0"}}


def web_address(daemon):
    """(host, port) of the daemon's web listener in its current run."""
    m = wait_for(lambda: WEB_RE.search(daemon.log_text(daemon._offset)), 10,
                 "the daemon to log its web listener")
    return m.group(1).strip("[]"), int(m.group(2))


def tls_context(cert):
    ctx = ssl.create_default_context(cafile=str(cert.ca))
    ctx.load_cert_chain(str(cert.crt), str(cert.key))
    return ctx


class Web:
    """One person's HTTPS client of the web listener (a new connection per request, unless
    keep=True)."""

    def __init__(self, daemon, cert, timeout=15):
        self.host, self.port = web_address(daemon)
        self.cert = cert
        self.timeout = timeout
        self.origin = f"https://{self.host}:{self.port}"

    def conn(self):
        ctx = tls_context(self.cert) if self.cert else ssl.create_default_context()
        return http.client.HTTPSConnection(self.host, self.port, context=ctx,
                                           timeout=self.timeout)

    def request(self, method, path, body=None, headers=None):
        """Returns (status, headers, body bytes)."""
        c = self.conn()
        try:
            c.request(method, path, body=body, headers=headers or {})
            r = c.getresponse()
            data = r.read()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, data
        finally:
            c.close()

    def post(self, op, fields=None, headers=None, raw=None):
        """POST /api/v1/OP; returns (status, JSON body)."""
        h = {"Content-Type": "application/json"}
        h.update(headers or {})
        body = raw if raw is not None else json.dumps(fields or {}).encode()
        status, _, data = self.request("POST", "/api/v1/" + op, body, h)
        try:
            doc = json.loads(data) if data else None
        except ValueError:
            doc = data
        return status, doc

    def ok(self, op, fields=None):
        status, doc = self.post(op, fields)
        assert status == 200, f"{op}: {status} {doc}"
        return doc

    def refused(self, op, fields, status, code, **kw):
        got_status, doc = self.post(op, fields, **kw)
        assert (got_status, doc["error"]["code"] if isinstance(doc, dict) and "error" in doc
                else doc) == (status, code), f"{op}: expected {status} {code}, got {got_status} {doc}"
        assert doc["error"]["message"], doc
        return doc["error"]


class EventStream:
    """GET /api/v1/watch read as server-sent events on a raw TLS socket."""

    def __init__(self, web, query="", headers=None):
        ctx = tls_context(web.cert)
        raw = socket.create_connection((web.host, web.port), timeout=web.timeout)
        self.sock = ctx.wrap_socket(raw, server_hostname=web.host)
        extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        path = "/api/v1/watch" + (("?" + query) if query else "")
        self.sock.sendall((f"GET {path} HTTP/1.1\r\nHost: {web.host}:{web.port}\r\n"
                           f"Accept: text/event-stream\r\n{extra}\r\n").encode())
        self.buf = b""
        head = self._until(b"\r\n\r\n")
        self.status = int(head.split(b" ")[1])
        self.headers = head.decode()
        self.events = []

    def _until(self, marker, deadline=None):
        deadline = deadline or time.monotonic() + 15
        while marker not in self.buf:
            if time.monotonic() > deadline:
                raise TimeoutError(f"no {marker!r} from the stream")
            self.sock.settimeout(max(0.05, deadline - time.monotonic()))
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("the stream closed")
            self.buf += chunk
        i = self.buf.index(marker)
        out, self.buf = self.buf[:i], self.buf[i + len(marker):]
        return out

    def next(self, timeout=10):
        """The next event as (name, data as JSON, id). Chunked framing is stripped."""
        deadline = time.monotonic() + timeout
        while True:
            size = int(self._until(b"\r\n", deadline), 16)
            if size == 0:
                raise ConnectionError("the stream ended")
            while len(self.buf) < size + 2:
                self.sock.settimeout(max(0.05, deadline - time.monotonic()))
                chunk = self.sock.recv(65536)
                if not chunk:
                    raise ConnectionError("the stream closed")
                self.buf += chunk
            chunk, self.buf = self.buf[:size], self.buf[size + 2:]
            name, data, ident = "message", None, None
            for line in chunk.decode().split("\n"):
                if line.startswith("event: "):
                    name = line[7:]
                elif line.startswith("data: "):
                    data = json.loads(line[6:])
                elif line.startswith("id: "):
                    ident = line[4:]
            if data is not None:
                self.events.append((name, data, ident))
                return name, data, ident

    def wait(self, pred, timeout=10, what="an event"):
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no {what}")
            ev = self.next(left)
            if pred(*ev):
                return ev

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass
