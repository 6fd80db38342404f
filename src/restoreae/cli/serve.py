"""Arguments and dispatch of `restoreae serve` (the local web page)."""

from __future__ import annotations

import argparse

from restoreae.cli.options import BACKEND_HELP, BACKENDS, MODEL_SPEC, port, positive


def add_serve(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="start the local web page")
    p.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)"
    )
    p.add_argument("--port", type=port, default=8765, help="TCP port (1–65535)")
    p.add_argument(
        "--allow-host",
        action="append",
        default=[],
        metavar="NAME",
        help="extra host name the page may be reached by (repeatable); the names of --host "
        "(and localhost for a loopback address) are always allowed; requests naming any other "
        "host, or posted from another site, are refused",
    )
    p.add_argument("--max-queued", type=positive, default=4, help="jobs waiting at most (then 429)")
    p.add_argument(
        "--model",
        action="append",
        default=[],
        metavar="[NAME=]MODEL",
        help=f"model offered in the page, {MODEL_SPEC} (repeatable; the shipped default is "
        "always listed)",
    )
    p.add_argument("--backend", choices=BACKENDS, default="auto", help=BACKEND_HELP)
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or mps")
    p.add_argument("--max-upload-mb", type=float, default=10.0, help="limit per file (default 10)")
    p.add_argument("--max-files", type=positive, default=16, help="files per request (default 16)")
    p.add_argument(
        "--log-level",
        default="info",
        choices=("critical", "error", "warning", "info", "debug"),
        help="server log detail",
    )
    p.set_defaults(func=_run_serve)


def _run_serve(args: argparse.Namespace) -> int:
    from restoreae.web.app import serve_command

    return serve_command(args)
