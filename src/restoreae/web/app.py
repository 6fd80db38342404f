"""`restoreae serve`: a small local FastAPI app with one HTML page for restoring characters.

Endpoints (also described by the OpenAPI page at ``/docs`` and ``/openapi.json``):

- ``GET /``: the page (``static/index.html``; its CSS and JS are under ``/static/``).
- ``GET /api/models``: the models the page can pick from and the limits (bytes per file, files
  per request, pixels per side, jobs waiting).
- ``GET /api/samples``: the bundled example pictures (``/samples/NAME``) and their characters.
- ``POST /api/restore``: multipart form with one or more ``files``, an optional ``char`` (one
  character for every file, one per file in order, or ``auto``: the recogniser chooses it) and an
  optional ``model`` name. Answers
  ``202`` with a job (see below) at once; with the form field ``wait=1`` it answers ``200`` with
  the finished job instead. ``429`` with ``Retry-After`` (seconds) when ``max_queued`` jobs are
  already waiting.
- ``GET /api/jobs/{id}``: the job: ``status`` (``queued`` | ``running`` | ``done``), ``done`` of
  ``total`` files, ``failed``, a ``stage`` line, and ``results`` (one per file in upload order,
  ``null`` while pending). A result has ``name``, ``ok``, ``error`` / ``error_zh`` (a message
  naming the file, in English and Chinese) or ``images`` (URLs of the ``input``, ``reference`` or
  ``null``, and ``restored`` PNGs), ``download`` (a URL), ``reference_form`` /
  ``reference_font`` (the form drawn and the font that drew it) and, for ``auto``, ``auto``
  (``char`` or null, ``confidence``, ``candidates``: ``[char, confidence]``).
- ``GET /api/jobs/{id}/files/{index}/{input|reference|restored}.png``: one image of a result.
- ``GET /api/jobs/{id}/zip``: every restored image of a job in one ZIP file.
- ``GET /download/{id}/{index}``: the restored image of one file as a PNG attachment.
- Page mode (whole pages: find the characters, correct them, restore again): see
  :mod:`restoreae.web.pages`.

Uploads are checked by decoding (never by file name): PNG, JPEG, TIFF, BMP, WebP or GIF, at most
``max_upload_bytes`` per file, ``max_files`` per request and ``MAX_IMAGE_SIDE`` pixels per side.
Inference runs in a thread pool, so the server keeps answering while it works. What the server
holds is bounded: ``max_queued`` jobs waiting, ``MAX_JOB_BYTES`` of result images per job,
``MAX_KEPT_JOBS`` finished jobs and ``MAX_STORED_BYTES`` of result images in all (the oldest
finished jobs are dropped first).

The server binds to 127.0.0.1 unless told otherwise and answers only requests whose ``Host`` is
one of ``allowed_hosts`` (its own names: DNS rebinding gets 403); a request that changes state
(POST) from another site's page (``Origin`` or ``Sec-Fetch-Site`` says so) gets 403 too. Every
response carries ``Content-Security-Policy``, ``X-Content-Type-Options: nosniff``,
``X-Frame-Options: DENY`` and ``Referrer-Policy: no-referrer``.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import logging
import zipfile
from collections.abc import Iterable
from contextlib import asynccontextmanager
from pathlib import Path, PureWindowsPath
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException

from restoreae.errors import RestoreAEError
from restoreae.evaluate.ocr import ocr_available
from restoreae.models.weights import resolve_weights, shipped_names, shipped_path
from restoreae.restore.api import AUTO
from restoreae.web.guard import BodyLimit, Guard, allowed_host_names, host_name, is_loopback
from restoreae.web.images import CHAR_FIELD, IMAGE_FORMATS, MAX_IMAGE_SIDE, PageError, parse_chars
from restoreae.web.jobs import (
    DEFAULT_MAX_QUEUED,
    DEFAULT_MAX_UPLOAD_BYTES,
    IMAGE_KINDS,
    MAX_JOB_BYTES,
    MAX_KEPT_JOBS,
    MAX_STORED_BYTES,
    QueueFull,
    RestoreService,
    Upload,
)

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).parent / "static"
ASSETS_DIR = Path(__file__).resolve().parent.parent / "assets"
DEFAULT_MAX_FILES = 16


def bundled_samples() -> list[dict[str, str]]:
    """The example pictures shipped in ``restoreae/assets``: ``{"name", "char", "url"}``."""
    table = ASSETS_DIR / "samples.csv"
    if not table.is_file():
        return []
    with open(table, encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return [
        {"name": r["path"], "char": r["char"], "url": f"/samples/{quote(r['path'])}"}
        for r in rows
        if r.get("path") and (ASSETS_DIR / Path(r["path"]).name).is_file()
    ]


# --------------------------------------------------------------------------- app
def shipped_models() -> dict[str, Path]:
    """``{name: path}`` of the shipped models installed here, ``default`` first (``{}`` when none;
    other models are offered with ``serve --model [NAME=]MODEL``)."""
    return {name: shipped_path(name) for name in shipped_names()}


def _error(status: int, en: str, zh: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """A JSON error in the page's terms: ``{"detail": English, "detail_zh": Chinese}``."""
    return JSONResponse({"detail": en, "detail_zh": zh}, status_code=status, headers=headers)


def _zip_name(name: str, used: set[str]) -> str:
    stem = Path(PureWindowsPath(name).name).stem or "glyph"
    cand, n = f"{stem}-restored.png", 2
    while cand in used:
        cand, n = f"{stem}-restored-{n}.png", n + 1
    used.add(cand)
    return cand


def create_app(
    model_paths: dict[str, str | Path] | None = None,
    *,
    device: str = "cpu",
    backend: str = "auto",
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES,
    max_files: int = DEFAULT_MAX_FILES,
    max_image_side: int = MAX_IMAGE_SIDE,
    workers: int = 1,
    allowed_hosts: Iterable[str] | None = None,
    max_queued: int = DEFAULT_MAX_QUEUED,
    max_kept_jobs: int = MAX_KEPT_JOBS,
    max_job_bytes: int = MAX_JOB_BYTES,
    max_stored_bytes: int = MAX_STORED_BYTES,
) -> FastAPI:
    """Build the web app.

    ``model_paths``: page name → model spec for ``Restorer.from_pretrained`` (see
    :func:`restoreae.models.weights.resolve_weights`); None → the shipped models installed
    (:func:`shipped_models`). ``backend``: ``auto`` | ``onnx`` | ``torch`` (see
    :func:`restoreae.restore.backends.open_backend`). Limits: ``max_upload_bytes`` per file,
    ``max_files`` per request, ``max_image_side`` pixels; ``max_queued`` jobs waiting,
    ``max_kept_jobs`` finished jobs, ``max_job_bytes`` / ``max_stored_bytes`` of result images
    per job / in all. ``workers`` inference threads. ``allowed_hosts``: the ``Host`` names
    answered (default: the loopback names, see :func:`allowed_host_names`).
    """
    if model_paths is None:
        model_paths = shipped_models()
    if max_upload_bytes < 1 or max_files < 1 or max_queued < 0:
        raise RestoreAEError("max_upload_bytes and max_files must be at least 1, max_queued ≥ 0")
    hosts = (
        allowed_host_names("127.0.0.1")
        if allowed_hosts is None
        else {host_name(h) for h in allowed_hosts}
    )
    service = RestoreService(
        model_paths,
        device=device,
        backend=backend,
        workers=workers,
        max_upload_bytes=max_upload_bytes,
        max_image_side=max_image_side,
        max_queued=max_queued,
        max_kept_jobs=max_kept_jobs,
        max_job_bytes=max_job_bytes,
        max_stored_bytes=max_stored_bytes,
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        yield
        service.close()

    app = FastAPI(
        title="restoreae",
        summary="Restore damaged images of single Chinese characters on this computer.",
        description="The HTTP API behind the page at `/`: post images to `/api/restore`, poll "
        "`/api/jobs/{id}`, fetch the result images by the URLs it gives. Requests must name "
        "this server's own host; state-changing requests from other sites are refused.",
        docs_url="/docs",
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.service = service
    app.state.allowed_hosts = hosts
    # Room for max_files full-size files plus the multipart framing and the small fields.
    app.add_middleware(BodyLimit, limit=max_files * (max_upload_bytes + 4096) + 65536)
    app.add_middleware(Guard, allowed_hosts=hosts)  # outermost: runs first
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html")

    @app.get("/api/models")
    async def models() -> dict[str, Any]:
        """The models offered, the default one, and the limits of a request."""
        return {
            "models": [
                {"name": n, "file": Path(str(p)).name, "default": n == service.default_model}
                for n, p in service.model_paths.items()
            ],
            "default": service.default_model,
            "max_upload_bytes": max_upload_bytes,
            "max_files": max_files,
            "max_image_side": max_image_side,
            "max_queued": max_queued,
            "formats": list(IMAGE_FORMATS),
        }

    @app.get("/api/samples")
    async def samples() -> dict[str, Any]:
        """The bundled example pictures: name, character and URL."""
        return {"samples": bundled_samples()}

    @app.get("/samples/{name}", include_in_schema=False)
    async def sample(name: str) -> Response:
        known = {s["name"] for s in bundled_samples()}
        if name not in known:
            return _error(404, f"no example {name!r}", "没有这个示例")
        path = ASSETS_DIR / Path(name).name
        return FileResponse(path, headers={"Cache-Control": "max-age=3600"})

    @app.post(
        "/api/restore",
        responses={
            202: {"description": "the job, queued"},
            200: {"description": "the finished job (form field wait=1)"},
            400: {"description": "no file, an unknown model or a bad character"},
            413: {"description": "too many files, or the upload is too large"},
            429: {"description": "too many jobs waiting; see Retry-After"},
        },
    )
    async def restore(request: Request) -> JSONResponse:
        """Restore the uploaded images (multipart: ``files``, ``char``, ``model``, ``wait``)."""
        try:
            form = await request.form(max_files=max_files, max_fields=16)
        except StarletteHTTPException as exc:  # what Starlette's multipart parser raises
            if "Too many files" in str(exc.detail):
                return _error(
                    413,
                    f"too many files: at most {max_files} per request",
                    f"文件过多：每次最多 {max_files} 个",
                )
            raise
        files = [f for f in form.getlist("files") if isinstance(f, UploadFile)]
        if not files:
            return _error(
                400,
                "no file uploaded: choose one or more images (field 'files')",
                "未上传文件：请选择一个或多个图像",
            )
        model = str(form.get("model") or "") or service.default_model
        if model is None:
            return _error(
                503,
                "no model is available on this server",
                "此服务器没有可用的模型",
            )
        if model not in service.model_paths:
            return _error(
                400,
                f"unknown model {model!r}; available: {', '.join(service.model_paths)}",
                f"未知模型 {model!r}",
            )
        try:
            chars = parse_chars(str(form.get("char") or ""), len(files))
        except PageError as exc:
            return _error(400, str(exc), exc.zh)
        if AUTO in chars and not ocr_available():
            return _error(
                400,
                f"{CHAR_FIELD}: auto is not available on this server (its character recogniser is "
                "not installed); type the character, or leave the field empty",
                "字：此服务器未安装识别器，不能使用 auto；请输入该字，或留空",
            )
        uploads = []
        for i, f in enumerate(files):
            # The base name only, whatever the sender's path separator.
            name = PureWindowsPath(f.filename or "").name or f"file {i + 1}"
            data = await f.read(max_upload_bytes + 1)
            size = f.size if f.size is not None else len(data)
            over = len(data) > max_upload_bytes
            uploads.append(Upload(name, b"" if over else data, size if over else None))
            await f.close()
        try:
            job = service.submit(uploads, chars, model)
        except QueueFull as exc:
            return _error(
                429,
                str(exc),
                f"服务器正忙，请约 {exc.retry_after} 秒后再试",
                headers={"Retry-After": str(exc.retry_after)},
            )
        if str(form.get("wait") or "") in ("1", "true", "yes"):
            await asyncio.wrap_future(job.future)
            return JSONResponse(job.to_json(), status_code=200)
        return JSONResponse(job.to_json(), status_code=202)

    def _missing_job(job_id: str) -> JSONResponse:
        return _error(
            404,
            f"no job {job_id!r} (finished jobs are kept for a while only)",
            "找不到该任务（已完成的任务只保留一段时间）",
        )

    @app.get("/api/jobs/{job_id}")
    async def job_status(job_id: str, skip: int = 0) -> Any:
        """The job; ``skip``: leave out the first results (the page has them)."""
        job = service.job(job_id)
        if job is None:
            return _missing_job(job_id)
        return job.to_json(skip=skip)

    @app.get("/api/jobs/{job_id}/files/{index}/{kind}.png")
    async def job_image(job_id: str, index: int, kind: str) -> Response:
        """One image of a result: ``input``, ``reference`` or ``restored`` (PNG)."""
        job = service.job(job_id)
        if job is None:
            return _missing_job(job_id)
        res = job.results[index] if 0 <= index < len(job.results) else None
        png = res.png(kind) if res is not None and kind in IMAGE_KINDS else None
        if png is None:
            return _error(404, f"no {kind} image for result {index}", "没有这张图")
        return Response(png, media_type="image/png", headers={"Cache-Control": "private"})

    @app.get("/api/jobs/{job_id}/zip")
    async def job_zip(job_id: str) -> Response:
        """Every restored image of the job, as ``NAME-restored.png`` files in one ZIP."""
        job = service.job(job_id)
        if job is None:
            return _missing_job(job_id)
        buf, used = io.BytesIO(), set()
        with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as zf:
            for res in job.results:
                if res is not None and res.restored_png is not None:
                    zf.writestr(_zip_name(res.name, used), res.restored_png)
        if not used:
            return _error(404, "this job has no restored image yet", "该任务还没有修复结果")
        return Response(
            buf.getvalue(),
            media_type="application/zip",
            headers={"Content-Disposition": 'attachment; filename="restored.zip"'},
        )

    @app.get("/download/{job_id}/{index}")
    async def download(job_id: str, index: int) -> Response:
        """The restored image of one file as a PNG attachment."""
        job = service.job(job_id)
        if job is None or not 0 <= index < len(job.results):
            return _error(404, f"no result {index} in job {job_id!r}", "找不到该结果")
        res = job.results[index]
        if res is None or res.restored_png is None:
            return _error(404, f"result {index} has no restored image", "该结果没有修复图像")
        fname = f"{Path(res.name).stem or 'glyph'}-restored.png"
        ascii_name = fname.encode("ascii", "replace").decode().replace("?", "_").replace('"', "_")
        disposition = f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(fname)}"
        return Response(
            res.restored_png, media_type="image/png", headers={"Content-Disposition": disposition}
        )

    from restoreae.web.pages import add_page_routes

    app.state.pages = add_page_routes(app, service, max_upload_bytes)
    return app


# --------------------------------------------------------------------------- command
def parse_model_args(values: list[str] | None) -> dict[str, str]:
    """``--model`` values → page name → model spec. A value is ``NAME=SPEC`` or a bare ``SPEC``
    (named after the model: a run folder's name, a file's stem); every spec is resolved now (see
    :func:`restoreae.models.weights.resolve_weights`), so a bad one fails before the server
    starts. The shipped models installed come first (``default`` first of them)."""
    models: dict[str, str] = {k: str(v) for k, v in shipped_models().items()}
    for value in values or []:
        name, sep, target = value.partition("=")
        if not sep:
            name, target = "", value
        elif not name or not target:
            raise RestoreAEError(f"--model {value!r}: expected MODEL or NAME=MODEL")
        try:
            source = resolve_weights(target)
        except RestoreAEError as exc:
            raise RestoreAEError(f"--model {value}: {exc}") from None
        name = name or source.name
        base, n = name, 2
        while name in models and models[name] not in (target, str(source.path)):  # same model
            name, n = f"{base}-{n}", n + 1
        models[name] = target
    return models


def serve_command(args: argparse.Namespace) -> int:
    """Start the web app with uvicorn (blocks until interrupted)."""
    import uvicorn

    models = parse_model_args(args.model)
    if not models:
        raise RestoreAEError(
            "no model to serve: the shipped default model is not installed; "
            "pass --model PATH (a checkpoint written by `restoreae train`)"
        )
    from restoreae.devices import check_device

    if not args.max_upload_mb > 0:
        raise RestoreAEError(f"--max-upload-mb must be more than 0, got {args.max_upload_mb}")
    hosts = allowed_host_names(args.host, getattr(args, "allow_host", []) or [])
    app = create_app(
        models,
        device=check_device(args.device),
        backend=getattr(args, "backend", None) or "auto",
        max_upload_bytes=int(args.max_upload_mb * 1024 * 1024),
        max_files=args.max_files,
        allowed_hosts=hosts,
        max_queued=getattr(args, "max_queued", DEFAULT_MAX_QUEUED),
    )
    # Load the first model now so a broken checkpoint fails here rather than in the page.
    app.state.service.restorer(app.state.service.default_model)
    if not is_loopback(args.host):
        print(
            f"warning: serving on {args.host}: anyone who can reach this machine can use the page"
        )
    shown = f"[{args.host}]" if ":" in args.host else args.host
    print(f"restoreae: open http://{shown}:{args.port}/  (models: {', '.join(models)})")
    print(f"  answers to the host names: {', '.join(sorted(hosts))} (more with --allow-host)")
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level)
    return 0
