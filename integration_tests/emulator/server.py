"""HTTP plumbing: the threaded server, the request handler and its send helpers, auth rules, the loopback check."""

from __future__ import annotations

import base64
import binascii
import contextlib
import hmac
import ipaddress
import socket
import struct
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

# Large bodies go out in pieces of about this size: big enough for few syscalls, small enough
# that serving 100k records never builds the whole ~200 MB body in memory.
WRITE_CHUNK_BYTES = 256 * 1024
# A GET body is never expected; drain at most this much so a keep-alive stream stays in sync.
_MAX_DRAIN_BYTES = 1 << 20

Headers = Sequence[tuple[str, str]]


@dataclass(frozen=True)
class Exchange:
    """One request on its way through an API: where it went, what it asked, and how to log its outcome."""

    handler: Handler
    path: str
    params: dict[str, str]
    now: float  # time.monotonic() on arrival
    log: Callable[[int, str | None], None]  # (status, fault): call once, just before answering


class Server(ThreadingHTTPServer):
    daemon_threads = True
    # Threads serving idle keep-alive connections must not keep the process alive or block stop().
    block_on_close = False

    def __init__(self, address: tuple[str, int], handle: Callable[[Handler], None]) -> None:
        self.handle = handle
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, Handler)

    def track(self, connection: socket.socket) -> None:
        with self._connections_lock:
            self._connections.add(connection)

    def untrack(self, connection: socket.socket) -> None:
        with self._connections_lock:
            self._connections.discard(connection)

    def close_connections(self) -> None:
        """Wake handler threads blocked on idle keep-alive connections so they exit promptly."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):  # already closed by its client
                connection.shutdown(socket.SHUT_RDWR)


class Handler(BaseHTTPRequestHandler):
    # HTTP/1.1 so clients keep connections alive; every response therefore carries a Content-Length.
    protocol_version = "HTTP/1.1"
    server_version = "dixa-emulator/1.0"
    server: Server

    def version_string(self) -> str:
        # Just our name: the default appends the Python version, which is noise in captured headers.
        return self.server_version

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in separate writes; with Nagle on, a keep-alive client's delayed ACK would
        # stall every response by ~40 ms.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.track(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.untrack(self.connection)

    def log_message(self, format: str, *args: object) -> None:
        # Silence the default per-request stderr line; tests assert on DixaEmulator.request_log instead.
        return

    def do_GET(self) -> None:
        self._drain_body()
        try:
            self.server.handle(self)
        except (BrokenPipeError, ConnectionResetError):
            # The client went away mid-response (e.g. it gave up on a slow or huge body).
            self.close_connection = True

    def _not_allowed(self) -> None:
        # Only GET is supported (both APIs' read endpoints).
        self._drain_body()
        self.send_empty(405, [("Allow", "GET")])

    do_POST = do_PUT = do_PATCH = do_DELETE = _not_allowed

    def _drain_body(self) -> None:
        length = self.headers.get("Content-Length")
        if length and length.isdigit() and 0 < int(length) <= _MAX_DRAIN_BYTES:
            self.rfile.read(int(length))
        elif length and length != "0":
            self.close_connection = True

    @property
    def origin(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def send_empty(self, status: int, headers: Headers = ()) -> None:
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def send_bytes(self, status: int, content_type: str, body: bytes, headers: Headers = ()) -> None:
        self.send_parts(status, content_type, [body], headers=headers)

    def send_parts(
        self,
        status: int,
        content_type: str,
        parts: Iterable[bytes],
        total: int | None = None,
        truncate: bool = False,
        headers: Headers = (),
    ) -> None:
        """Send the concatenation of `parts` with its exact Content-Length; `truncate` stops after half of it.

        `total` is the summed length when the caller knows it (so `parts` may be a lazy iterator).
        """
        if total is None:
            parts = list(parts)
            total = sum(map(len, parts))
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(total))
        self.end_headers()
        remaining = total // 2 if truncate else total
        for chunk in parts:
            if len(chunk) >= remaining:
                self.wfile.write(chunk[:remaining])
                break
            self.wfile.write(chunk)
            remaining -= len(chunk)
        if truncate:
            # The promised Content-Length is never reached: closing now gives the client a short read.
            self.close_connection = True

    def send_array(
        self,
        payloads: Sequence[bytes],
        content_type: str,
        truncate: bool = False,
        prefix: bytes = b"",
        suffix: bytes = b"",
    ) -> None:
        """Send `prefix[p0,p1,...]suffix` (a bare JSON array by default), in chunks, with its exact length."""
        total = len(prefix) + 2 + sum(map(len, payloads)) + max(0, len(payloads) - 1) + len(suffix)
        chunks = iter_array_chunks(payloads)
        if prefix or suffix:
            chunks = _wrap(prefix, chunks, suffix)
        self.send_parts(200, content_type, chunks, total=total, truncate=truncate)

    def reset(self) -> None:
        """Abort the connection with a TCP RST before any response (SO_LINGER with a zero timeout)."""
        self.close_connection = True
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        # rfile holds a reference to the socket; the fd is only really closed (sending the RST) once it is gone.
        self.rfile.close()
        self.connection.close()


def _wrap(prefix: bytes, chunks: Iterator[bytes], suffix: bytes) -> Iterator[bytes]:
    if prefix:
        yield prefix
    yield from chunks
    if suffix:
        yield suffix


def iter_array_chunks(payloads: Sequence[bytes]) -> Iterator[bytes]:
    """Yield the JSON array `[p0,p1,...]` in pieces of roughly `WRITE_CHUNK_BYTES`."""
    yield b"["
    start = 0
    size = 0
    for index, payload in enumerate(payloads):
        size += len(payload) + 1
        if size >= WRITE_CHUNK_BYTES:
            piece = b",".join(payloads[start : index + 1])
            yield piece if start == 0 else b"," + piece
            start, size = index + 1, 0
    if start < len(payloads):
        piece = b",".join(payloads[start:])
        yield piece if start == 0 else b"," + piece
    yield b"]"


# ---- auth --------------------------------------------------------------------------------------------------------


def exports_auth_ok(header: str | None, token: str) -> bool:
    """The Exports API: `Bearer <token>` (OAS) or legacy Basic `bearer:<token>`."""
    if not header or " " not in header:
        return False
    scheme, _, credentials = header.partition(" ")
    credentials = credentials.strip()
    expected = token.encode("utf-8")
    if scheme.lower() == "bearer":
        return hmac.compare_digest(credentials.encode("utf-8"), expected)
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(credentials, validate=True)
        except (binascii.Error, ValueError):
            return False
        username, sep, password = decoded.partition(b":")
        return sep == b":" and username == b"bearer" and hmac.compare_digest(password, expected)
    return False


def dixa_auth_ok(header: str | None, token: str, accept_bearer: bool) -> bool:
    """The Dixa API: the raw token, no prefix (OAS `ApiKeyAuth`); `Bearer <token>` only when `accept_bearer`."""
    if not header:
        return False
    value = header.strip()
    if accept_bearer and value[:7].lower() == "bearer ":
        value = value[7:].strip()
    return hmac.compare_digest(value.encode("utf-8"), token.encode("utf-8"))


# ---- loopback ----------------------------------------------------------------------------------------------------


def check_loopback(host: str) -> None:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"emulator binds to IPv4 loopback addresses only, got {host!r}") from None
    if address.version != 4 or not address.is_loopback:
        raise ValueError(f"emulator binds to IPv4 loopback addresses only, got {host!r}")


def check_loopback_origin(origin: str) -> None:
    """An `http://<IPv4 loopback or 0.0.0.0>[:port]` origin, so a followed link can never leave the machine."""
    parts = urlsplit(origin)
    host = parts.hostname or ""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    ok = (
        parts.scheme == "http"
        and address is not None
        and address.version == 4
        and (address.is_loopback or address.is_unspecified)
        and parts.path in ("", "/")
        and not parts.query
    )
    if not ok:
        raise ValueError(f"foreign_origin must be http://<IPv4 loopback or 0.0.0.0>[:port], got {origin!r}")
