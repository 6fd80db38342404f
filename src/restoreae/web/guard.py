"""What the local server answers: a request-body limit and a Host / Origin guard that also sets the
security headers (Content-Security-Policy, nosniff, DENY, no-referrer) on every response."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from typing import Any

from fastapi import HTTPException
from fastapi.responses import JSONResponse

from restoreae.web.images import megabytes

#: Host names a loopback server answers to (plus the address it is bound to).
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")
#: The page's own resources only; images may be data or blob URLs (drag-and-drop previews).
PAGE_CSP = (
    "default-src 'self'; img-src 'self' data: blob:; script-src 'self'; style-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
#: FastAPI's /docs page loads Swagger UI from its CDN and starts it with an inline script.
DOCS_CSP = (
    "default-src 'self'; img-src 'self' data: https://fastapi.tiangolo.com; "
    "script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
    "style-src 'self' https://cdn.jsdelivr.net; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'"
)


class BodyLimit:
    """ASGI middleware: answers 413 to a request whose body is larger than ``limit`` bytes."""

    def __init__(self, app: Any, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await _too_large(self.limit)(scope, receive, send)
            return
        seen = 0

        async def counting_receive() -> dict:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                raise HTTPException(413, _too_large_text(self.limit))
            return message

        await self.app(scope, counting_receive, send)


def _too_large_text(limit: int) -> str:
    return f"the upload is larger than {megabytes(limit)} in all; send fewer or smaller files"


def _too_large(limit: int) -> JSONResponse:
    return JSONResponse(
        {
            "detail": _too_large_text(limit),
            "detail_zh": f"上传总量超过 {megabytes(limit)}，请减少或缩小文件",
        },
        status_code=413,
    )


def host_name(value: str) -> str:
    """``host[:port]`` or ``[v6][:port]`` → the lower-case host name without the port."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[1 : value.find("]")] if "]" in value else value
    if value.count(":") == 1:
        return value.split(":", 1)[0]
    return value


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or an IP address) is this machine's loopback."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def allowed_host_names(host: str, extra: Iterable[str] = ()) -> set[str]:
    """The host names a server bound to ``host`` answers to: ``host`` itself, the loopback names
    for a loopback address, this machine's names for a wildcard address, and ``extra``."""
    names = {host_name(host)} | {host_name(e) for e in extra if e.strip()}
    if is_loopback(host):
        names |= set(LOOPBACK_NAMES)
    elif host in ("0.0.0.0", "::", ""):
        names |= set(LOOPBACK_NAMES) | {socket.gethostname().lower(), socket.getfqdn().lower()}
    return {n for n in names if n}


class Guard:
    """ASGI middleware: refuses requests for other host names (DNS rebinding) and state-changing
    requests from other sites' pages (403), and adds the security headers to every response."""

    UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})

    def __init__(self, app: Any, allowed_hosts: set[str]) -> None:
        self.app = app
        self.allowed = allowed_hosts

    def _refusal(self, scope: dict) -> tuple[str, str] | None:
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        host = host_name(headers.get("host", ""))
        if host not in self.allowed:
            return (
                f"this server does not answer to the host name {host or '(none)'!r}; open it "
                "by one of its own names",
                "此服务器不接受该主机名的请求",
            )
        if scope.get("method", "GET").upper() in self.UNSAFE:
            origin = headers.get("origin")
            if origin is not None:
                origin_host = host_name(origin.split("://", 1)[-1].split("/", 1)[0])
                if origin == "null" or origin_host not in self.allowed:
                    return (
                        "requests from other sites are refused; use this server's own page",
                        "不接受来自其他网站的请求，请使用本服务器的页面",
                    )
            elif headers.get("sec-fetch-site") == "cross-site":
                return (
                    "requests from other sites are refused; use this server's own page",
                    "不接受来自其他网站的请求，请使用本服务器的页面",
                )
        return None

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        csp = DOCS_CSP if path in ("/docs", "/docs/oauth2-redirect") else PAGE_CSP
        extra = [
            (b"content-security-policy", csp.encode()),
            (b"x-content-type-options", b"nosniff"),
            (b"x-frame-options", b"DENY"),
            (b"referrer-policy", b"no-referrer"),
            (b"cross-origin-resource-policy", b"same-origin"),
        ]

        async def send_with_headers(message: dict) -> None:
            if message["type"] == "http.response.start":
                message = dict(message)
                message["headers"] = list(message.get("headers") or []) + extra
            await send(message)

        refusal = self._refusal(scope)
        if refusal is not None:
            response = JSONResponse(
                {"detail": refusal[0], "detail_zh": refusal[1]}, status_code=403
            )
            await response(scope, receive, send_with_headers)
            return
        await self.app(scope, receive, send_with_headers)
