"""A client of the Fristad protocol, version 1, written from proto/PROTOCOL.md alone.

It shares no code with the C proto library, so it checks the daemon against the written
contract rather than against the C implementation's reading of it. Standard library `ssl` and
`socket`, plus `msgpack` (Debian's python3-msgpack).

    with Connection("127.0.0.1", port, cert="c.crt", key="c.key", ca="ca.crt") as c:
        ok, result = c.request("whoami")

Besides plain requests it can pipeline (send many, match replies by id), send raw bytes and
raw frames (for hostile-input tests), and wait for the server to close the connection.
"""

import itertools
import socket
import ssl
import struct
import time

import msgpack

HEADER = struct.Struct(">I")
DEFAULT_MAX_FRAME = 65536
DEFAULT_TIMEOUT = 10.0

ERROR_CODES = frozenset({
    "bad_frame", "too_large", "bad_request", "unknown_op", "unauthorized", "forbidden",
    "not_found", "conflict", "unavailable", "internal", "rate_limited", "personal_data",
    "outcome_unknown", "ineligible", "limit_reached", "gone",
})

ROLES = ("shelter", "social", "oncall", "admin")


class ProtocolError(Exception):
    """The server sent something the contract does not allow."""


class ConnectionClosed(Exception):
    """The peer closed the connection, reset it, or ended TLS with an error."""

    def __init__(self, reason):
        super().__init__(reason)
        self.reason = reason


class ServerError(Exception):
    """An error reply: `code` is the stable code, `message` the sentence for people."""

    def __init__(self, code, message, reply=None):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.reply = reply


def frame(body):
    """Prefixes a body with its 4-byte big-endian length."""
    return HEADER.pack(len(body)) + body


def packb(obj):
    return msgpack.packb(obj, use_bin_type=True)


def request_body(op, args=None, rid=0):
    req = {"id": rid, "op": op}
    if args is not None:
        req["args"] = args
    return packb(req)


def check_reply(obj):
    """Checks a decoded reply against section 3; returns it."""
    if not isinstance(obj, dict):
        raise ProtocolError(f"reply is not a map: {obj!r}")
    rid = obj.get("id", "missing")
    if rid is not None and not (isinstance(rid, int) and not isinstance(rid, bool) and rid >= 0):
        raise ProtocolError(f"reply id is neither nil nor a non-negative integer: {obj!r}")
    ok = obj.get("ok")
    if ok is True:
        if set(obj) != {"id", "ok", "result"}:
            raise ProtocolError(f"ok reply must have exactly id, ok, result: {obj!r}")
    elif ok is False:
        if set(obj) != {"id", "ok", "error"}:
            raise ProtocolError(f"error reply must have exactly id, ok, error: {obj!r}")
        err = obj["error"]
        if not isinstance(err, dict) or set(err) != {"code", "message"}:
            raise ProtocolError(f"error must be a map of code and message: {obj!r}")
        if err["code"] not in ERROR_CODES:
            raise ProtocolError(f"unknown error code {err['code']!r}")
        if not isinstance(err["message"], str) or not err["message"]:
            raise ProtocolError(f"error message must be a non-empty string: {obj!r}")
    else:
        raise ProtocolError(f"reply 'ok' must be true or false: {obj!r}")
    return obj


def tls_context(cert=None, key=None, ca=None, *, min_version=ssl.TLSVersion.TLSv1_2,
                max_version=None, ciphers=None, check_hostname=True):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if ciphers:
        ctx.set_ciphers(ciphers)
    if min_version is not None:
        ctx.minimum_version = min_version
    if max_version is not None:
        ctx.maximum_version = max_version
    if ca:
        ctx.load_verify_locations(cafile=str(ca))
        ctx.check_hostname = check_hostname
        ctx.verify_mode = ssl.CERT_REQUIRED
    else:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if cert:
        ctx.load_cert_chain(str(cert), str(key) if key else None)
    return ctx


class Connection:
    """One TLS connection to fristadd.

    The TLS handshake happens in the constructor. With TLS 1.3 a server that refuses the client
    certificate can only say so after the client's handshake has finished, so a refusal shows
    as ConnectionClosed on the first read, not here.
    """

    def __init__(self, host, port, cert=None, key=None, ca=None, *, timeout=DEFAULT_TIMEOUT,
                 server_hostname=None, context=None, min_version=ssl.TLSVersion.TLSv1_2,
                 max_version=None, ciphers=None):
        self.host = host
        self.port = int(port)
        self.timeout = timeout
        self._ids = itertools.count(1)
        self._buf = bytearray()
        self._replies = {}
        self._nil_replies = []
        self.closed = False
        if context is None:
            context = tls_context(cert, key, ca, min_version=min_version,
                                  max_version=max_version, ciphers=ciphers)
        raw = socket.create_connection((host, self.port), timeout=timeout)
        try:
            self.sock = context.wrap_socket(raw, server_hostname=server_hostname or host)
        except BaseException:
            raw.close()
            raise

    # -- plumbing ---------------------------------------------------------------------------

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        if not self.closed:
            self.closed = True
            try:
                self.sock.close()
            except OSError:
                pass

    @property
    def tls_version(self):
        return self.sock.version()

    def next_id(self):
        return next(self._ids)

    def send_raw(self, data):
        """Writes bytes as they are (inside TLS)."""
        try:
            self.sock.sendall(bytes(data))
        except (ssl.SSLError, OSError) as e:
            raise ConnectionClosed(f"send failed: {e}") from e

    def send_frame(self, body):
        """Writes one frame around an already encoded body."""
        self.send_raw(frame(body))

    def send(self, op, args=None, rid=None):
        """Sends one request without waiting; returns its id."""
        if rid is None:
            rid = self.next_id()
        self.send_frame(request_body(op, args, rid))
        return rid

    def _fill(self, deadline):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("no complete frame from the server in time")
        self.sock.settimeout(remaining)
        try:
            chunk = self.sock.recv(65536)
        except (socket.timeout, TimeoutError) as e:
            raise TimeoutError("no complete frame from the server in time") from e
        except ssl.SSLError as e:
            self.closed = True
            raise ConnectionClosed(f"TLS error: {e}") from e
        except OSError as e:
            self.closed = True
            raise ConnectionClosed(f"socket error: {e}") from e
        if not chunk:
            self.closed = True
            if self._buf:
                raise ConnectionClosed(f"closed inside a frame ({len(self._buf)} bytes pending)")
            raise ConnectionClosed("closed by the server")
        self._buf += chunk

    def read_frame_body(self, timeout=None):
        """Reads one frame and returns its body bytes."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while len(self._buf) < HEADER.size:
            self._fill(deadline)
        (n,) = HEADER.unpack_from(self._buf)
        if n == 0 or n > 16 * 1024 * 1024:
            raise ProtocolError(f"server sent a frame length of {n}")
        while len(self._buf) < HEADER.size + n:
            self._fill(deadline)
        body = bytes(self._buf[HEADER.size:HEADER.size + n])
        del self._buf[:HEADER.size + n]
        return body

    def read_frame(self, timeout=None):
        """Reads one frame and returns the decoded, checked reply map."""
        body = self.read_frame_body(timeout)
        try:
            obj = msgpack.unpackb(body, raw=False, strict_map_key=False)
        except Exception as e:
            raise ProtocolError(f"reply is not one msgpack object: {e}: {body[:64].hex()}")
        return check_reply(obj)

    def recv_reply(self, rid, timeout=None):
        """Returns the reply with this id (nil id when rid is None), keeping others aside."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            if rid is None and self._nil_replies:
                return self._nil_replies.pop(0)
            if rid is not None and rid in self._replies:
                return self._replies.pop(rid)
            reply = self.read_frame(max(deadline - time.monotonic(), 0.001))
            if reply["id"] is None:
                self._nil_replies.append(reply)
            elif reply["id"] in self._replies:
                raise ProtocolError(f"two replies with id {reply['id']}")
            else:
                self._replies[reply["id"]] = reply

    # -- requests ---------------------------------------------------------------------------

    def request(self, op, args=None, timeout=None):
        """Sends one request and waits for its reply: (True, result) or (False, error map)."""
        rid = self.send(op, args)
        reply = self.recv_reply(rid, timeout)
        if reply["ok"]:
            return True, reply["result"]
        return False, reply["error"]

    def call(self, op, args=None, timeout=None):
        """Like request, but returns the result or raises ServerError."""
        ok, res = self.request(op, args, timeout)
        if not ok:
            raise ServerError(res["code"], res["message"])
        return res

    def pipeline(self, requests, timeout=None):
        """Sends every (op, args) at once, then returns the replies in request order."""
        ids = [self.next_id() for _ in requests]
        data = b"".join(frame(request_body(op, args, rid)) for (op, args), rid in zip(requests, ids))
        self.send_raw(data)
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        return [self.recv_reply(rid, max(deadline - time.monotonic(), 0.001)) for rid in ids]

    def wait_closed(self, timeout=None):
        """Reads until the server closes; returns the replies that came first.

        Raises TimeoutError when the connection is still open at the deadline."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        got = []
        while True:
            try:
                got.append(self.read_frame(max(deadline - time.monotonic(), 0.001)))
            except ConnectionClosed:
                return got

    def is_open(self, timeout=0.5):
        """True when a whoami is answered on this connection within the time."""
        try:
            ok, _ = self.request("whoami", timeout=timeout)
            return ok
        except (ConnectionClosed, TimeoutError):
            return False
