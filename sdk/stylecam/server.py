"""MJPEG over HTTP with live controls, safe where any web page the user's browser opens can reach it.

A page on any site can send requests to 127.0.0.1, and one on a rebinding domain can read the answers, so:
- the Host header must name the address the server is bound to (or a name the user allows, e.g. a reverse
  proxy's): a rebinding domain gets 403 and never sees the camera;
- controls are POST-only, carry the per-run token (the served page has it; the start-up line prints it), and a
  request whose Origin is not the server's own is refused;
- bound to anything but loopback, every path needs the token;
- connections time out when idle or when a stream reader stalls, their number is capped (503 beyond it), and
  the listen backlog takes a burst;
- every failure is an HTTP answer with a one-line message, never a dropped connection.
"""
from __future__ import annotations

import errno
import ipaddress
import json
import logging
import secrets
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import cv2
import numpy as np

log = logging.getLogger("stylecam")

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
MAX_BODY = 4096  # a control is a few words

_BIND_HINTS = {errno.EADDRINUSE: "another program (an earlier stylecam?) holds that port: stop it, or pick another "
                                 "port (0 takes any free one)",
               errno.EACCES: "ports below 1024 need root: use one like 8080",
               errno.EADDRNOTAVAIL: "this machine has no such address: use 127.0.0.1, or 0.0.0.0 for every interface"}

_PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>stylecam</title>
<style>body{background:#111;color:#eee;font-family:sans-serif;text-align:center}img{max-width:100%}
button{font-size:1.1em;margin:.3em}</style></head><body>
<img src="/stream.mjpg?token=TOKEN" alt="stylized stream"><div>
<button onclick="c('prev')">&larr; style</button><button onclick="c('next')">style &rarr;</button>
<button onclick="c('weaker')">strength &minus;</button><button onclick="c('stronger')">strength +</button>
<button onclick="c('smooth')">smoothing</button><button onclick="c('bigger')">bigger strokes</button>
<button onclick="c('finer')">finer strokes</button><button onclick="c('original')">original</button>
<button onclick="c('screenshot')">screenshot</button><button onclick="c('save')">save look</button>
</div><pre id="s"></pre><script>
function c(cmd){fetch('/control',{method:'POST',headers:{'X-Stylecam-Token':'TOKEN',
'Content-Type':'application/x-www-form-urlencoded'},body:'cmd='+encodeURIComponent(cmd)})
.then(r=>r.json()).then(j=>s.textContent=JSON.stringify(j))}
</script></body></html>"""


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def host_name(header: str) -> str:
    """The name in a Host header, without its port: 'localhost:8080' → 'localhost', '[::1]:80' → '::1'."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1:].partition("]")[0]
    return header.rpartition(":")[0] if header.count(":") == 1 else header


def printable(text: str) -> str:
    """Control characters escaped, so a request cannot forge or hide log lines."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


class HTTPError(Exception):
    def __init__(self, code: int, message: str, headers: dict | None = None):
        super().__init__(message)
        self.code, self.headers = code, headers or {}


class _Server(ThreadingHTTPServer):
    """A thread per connection, at most ``max_clients`` at once; the next gets 503 and is closed at once."""

    daemon_threads = True
    request_queue_size = 64  # a burst of connections waits in the kernel instead of on SYN retries

    def __init__(self, address, handler, max_clients: int):
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.slots = threading.BoundedSemaphore(max_clients)
        super().__init__(address, handler)

    def process_request(self, request, client_address):
        if self.slots.acquire(blocking=False):
            try:
                return super().process_request(request, client_address)
            except Exception:  # no thread started: give the slot back
                self.slots.release()
                raise
        body = b"too many clients: close another stream or try again shortly\n"
        try:
            request.settimeout(1.0)
            request.sendall(b"HTTP/1.0 503 Service Unavailable\r\nContent-Type: text/plain\r\nRetry-After: 5\r\n"
                            b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body) + body)
        except OSError:
            pass
        self.shutdown_request(request)

    def process_request_thread(self, request, client_address):
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.slots.release()


class MJPEGServer:
    """MJPEG over HTTP: ``/`` a page with controls, ``/stream.mjpg``, ``/frame.jpg``, ``/status``, and
    ``POST /control`` with ``cmd=`` any ``Controls.handle`` command (next, strength=0.5, mix=udnie, save...)
    and the token (header ``X-Stylecam-Token``, or ``token=`` in the query or form body).

    Binds 127.0.0.1 unless told otherwise; port 0 picks a free port (see ``.port``). ``token``: the secret
    (default: a new random one per run, see ``.url``). ``allowed_hosts``: more names the Host header may carry
    (a reverse proxy's). ``timeout``: seconds a connection may sit idle or a stream reader stall.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 8080, controls=None, quality: int = 80, *,
                 token: str | None = None, allowed_hosts: tuple[str, ...] = (), timeout: float = 10.0,
                 max_clients: int = 32):
        self.controls, self.quality = controls, quality
        self.token = token or secrets.token_urlsafe(16)
        self.exposed = not is_loopback(host)
        wildcard = host in ("0.0.0.0", "::", "")
        # on a wildcard bind the machine's names and addresses are unknown; the token guards every path there
        self.allowed_hosts = None if wildcard else {host.lower(), *(h.lower() for h in allowed_hosts),
                                                    *(LOOPBACK_NAMES if not self.exposed else ())}
        self._jpeg, self._seq, self._closed = None, 0, False
        self._cond = threading.Condition()
        handler = type("Handler", (_Handler,), {"server_": self, "timeout": timeout})
        try:
            self.httpd = _Server((host, port), handler, max_clients)
        except OSError as e:
            raise OSError(f"cannot serve the stream on {host}:{port}: {e.strerror or e}; "
                          f"{_BIND_HINTS.get(e.errno, 'check the address')}") from e
        self.host, self.port = self.httpd.server_address[:2]
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="stylecam-http", daemon=True)
        self._thread.start()
        log.info("streaming on %s (%s)", self.url, "the token guards the stream and the controls" if self.exposed
                 else "controls need the token in this URL")

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/?token={self.token}"

    def status(self) -> dict:
        return {"frames": self._seq, **(self.controls.state() if self.controls is not None else {})}

    def write(self, view: np.ndarray, frame) -> None:
        ok, buf = cv2.imencode(".jpg", view, [cv2.IMWRITE_JPEG_QUALITY, self.quality])
        with self._cond:
            self._jpeg, self._seq = buf.tobytes(), self._seq + 1
            self._cond.notify_all()

    def wait_frame(self, after: int, timeout: float) -> tuple[bytes | None, int]:
        """The newest JPEG once its sequence number is past ``after`` (None on timeout or close)."""
        with self._cond:
            self._cond.wait_for(lambda: self._closed or (self._jpeg is not None and self._seq > after), timeout)
            return (self._jpeg, self._seq) if not self._closed else (None, self._seq)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self.httpd.shutdown()
        self.httpd.server_close()


class _Handler(BaseHTTPRequestHandler):
    server_: MJPEGServer  # set per server by MJPEGServer
    _answered = False

    def log_message(self, fmt, *args):  # one line per request is too much for a stream; escaped for the log
        log.debug("http: %s", printable(fmt % args))

    def do_GET(self):  # noqa: N802 - http.server's name
        self._answer("GET")

    def do_POST(self):  # noqa: N802
        self._answer("POST")

    def _answer(self, method: str) -> None:
        try:
            self._route(method)
        except HTTPError as e:
            self._send_json({"error": str(e)}, e.code, e.headers)
        except (BrokenPipeError, ConnectionResetError, socket.timeout):
            self.close_connection = True  # the client went away or stalled: nothing left to answer
        except Exception as e:  # noqa: BLE001 - a bug answers 500, it does not drop the connection
            log.error("http %s %s failed: %s: %s", method, printable(self.path), type(e).__name__, printable(str(e)))
            self._send_json({"error": f"internal error: {type(e).__name__}: {e}".splitlines()[0]}, 500)

    def _route(self, method: str) -> None:
        srv, url = self.server_, urlparse(self.path)
        self._check_host()
        if url.path == "/control":
            return self._control(method, url)
        if method != "GET":
            raise HTTPError(405, f"{url.path} is read with GET", {"Allow": "GET"})
        if srv.exposed and not self._token_ok(url):
            raise HTTPError(401, "this stream needs its token: open the URL stylecam printed at start "
                                 "(http://HOST:PORT/?token=...), or pass the one set with --http-token")
        if url.path == "/":
            self._send(_PAGE.replace("TOKEN", srv.token).encode(), "text/html; charset=utf-8")
        elif url.path == "/stream.mjpg":
            self._stream()
        elif url.path == "/frame.jpg":
            jpeg = srv.wait_frame(0, timeout=5.0)[0]
            if not jpeg:
                raise HTTPError(503, "no frame yet: the source has not delivered one", {"Retry-After": "1"})
            self._send(jpeg, "image/jpeg")
        elif url.path == "/status":
            self._send_json(srv.status())
        else:
            raise HTTPError(404, f"no such page {printable(url.path)!r}: /, /stream.mjpg, /frame.jpg, /status, "
                                 "POST /control")

    def _check_host(self) -> None:
        allowed, header = self.server_.allowed_hosts, self.headers.get("Host")
        if allowed is None or header is None or host_name(header) in allowed:
            return
        raise HTTPError(403, f"this server answers to {', '.join(sorted(allowed))}, not {printable(header)!r} "
                             "(behind a reverse proxy: stylecam live --http-allow-host NAME)")

    def _token_ok(self, url, form: dict | None = None) -> bool:
        given = (self.headers.get("X-Stylecam-Token") or parse_qs(url.query).get("token", [""])[0]
                 or (form or {}).get("token", [""])[0])
        return secrets.compare_digest(given.encode(), self.server_.token.encode())

    def _control(self, method: str, url) -> None:
        srv = self.server_
        if method != "POST":
            raise HTTPError(405, "controls are POST-only: POST /control with cmd=... and the token", {"Allow": "POST"})
        origin = self.headers.get("Origin")
        own = {f"http://{self.headers.get('Host', '')}".lower()}
        if origin is not None and origin.lower() not in own:
            raise HTTPError(403, f"cross-origin request from {printable(origin)!r} refused: controls are taken only "
                                 "from the page this server serves")
        form = self._form()
        if not self._token_ok(url, form):
            raise HTTPError(403, "controls need the token: the X-Stylecam-Token header or token=, as in the URL "
                                 "stylecam printed at start")
        if srv.controls is None:
            raise HTTPError(409, "no controls on this stream")
        cmd = (form.get("cmd") or parse_qs(url.query).get("cmd") or [""])[0]
        try:
            result = srv.controls.handle(cmd, remote=True)
        except ValueError as e:
            raise HTTPError(getattr(e, "http_status", 400), str(e), getattr(e, "headers", None)) from None
        except RuntimeError as e:  # a bundle that does not load, a backend that does not start
            raise HTTPError(400, f"{cmd.partition('=')[0]}: {e}".splitlines()[0]) from None
        log.info("http control: %s → %s", printable(cmd), printable(result))
        self._send_json({"result": result, **srv.status()})

    def _form(self) -> dict:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            raise HTTPError(413, f"a control is at most {MAX_BODY} bytes")
        body = self.rfile.read(length).decode("utf-8", "replace") if length > 0 else ""
        return parse_qs(body)

    def _send(self, body: bytes, ctype: str, code: int = 200, headers: dict | None = None) -> None:
        if self._answered:  # a stream that failed half-way: its status line is gone
            self.close_connection = True
            return
        self._answered = True
        self.send_response(code)
        for k, v in {"Content-Type": ctype, "Content-Length": str(len(body)), "Cache-Control": "no-store",
                     "X-Content-Type-Options": "nosniff", **(headers or {})}.items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def _send_json(self, obj: dict, code: int = 200, headers: dict | None = None) -> None:
        self._send(json.dumps(obj).encode(), "application/json", code, headers)

    def _stream(self) -> None:
        self._answered = True
        self.send_response(200)
        self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        seq = 0
        while True:  # a reader that stalls longer than the timeout raises socket.timeout: the connection ends
            jpeg, new = self.server_.wait_frame(seq, timeout=5.0)
            if jpeg is None:
                if self.server_._closed:
                    return
                continue
            seq = new
            self.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n"
                             % len(jpeg) + jpeg + b"\r\n")
