"""The web page's page mode: upload a whole page, see the found characters, correct, restore again.

Endpoints (added to the app by :func:`add_page_routes`):

- ``POST /api/page``: multipart form with one ``file`` (a page image), optional ``model``,
  ``layout`` (``columns`` | ``rows``) and ``text`` (the transcription in reading order). Finds the
  characters, identifies and restores them (:func:`restoreae.restore.page_restore.restore_page`)
  and answers with the page (see :meth:`PageSession.to_json`).
- ``POST /api/page/{id}``: JSON ``{"characters": [{"box": [x0, y0, x1, y1], "char": "永" | null,
  "column": c}, ...]}`` in reading order — the boxes and characters as the user corrected them (a
  box left out is deleted; a ``null`` character is recognised again). Restores the page again
  from the original image and answers as above.
- ``GET /download/page/{id}/restored.png`` and ``GET /download/page/{id}/page.json``: the restored
  page and its JSON record (the format of ``restoreae restore-page``) as attachments.

The last :data:`MAX_KEPT_PAGES` pages are kept in memory for corrections.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import threading
import time
import uuid
import warnings
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path, PureWindowsPath
from typing import Any
from urllib.parse import quote

import numpy as np
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse, Response
from PIL import Image, UnidentifiedImageError
from starlette.datastructures import UploadFile

from restoreae.errors import DataError, RestoreAEError
from restoreae.restore.page import LAYOUTS

MAX_KEPT_PAGES = 8
#: At most this many characters on a page sent back for a second restoration.
MAX_BOXES = 2000


def encode_png(image: np.ndarray) -> bytes:
    """uint8 (H, W) grey or (H, W, 3) RGB → PNG bytes."""
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image, dtype=np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def _data_url(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def decode_page(data: bytes, name: str, max_side: int) -> tuple[np.ndarray, np.ndarray | None]:
    """Uploaded bytes → ``(grey, rgb)`` as :func:`restoreae.restore.page_io.load_page` gives them.
    Raises DataError naming ``name`` for empty, non-image, damaged or too large uploads."""
    from restoreae.restore.page_io import load_page
    from restoreae.web.images import IMAGE_FORMATS

    if not data:
        raise DataError(f"{name}: the file is empty")
    try:
        with Image.open(io.BytesIO(data), formats=IMAGE_FORMATS) as im:
            w, h = im.size
            if max(w, h) > max_side:
                raise DataError(
                    f"{name}: the image is {w}×{h} pixels; the limit is {max_side} per side"
                )
            im.load()
            return load_page(im)
    except UnidentifiedImageError:
        raise DataError(
            f"{name}: not an image (accepted: {', '.join(IMAGE_FORMATS)}); "
            "the content was checked, not the file name"
        ) from None
    except RestoreAEError as exc:
        msg = str(exc)
        raise DataError(msg if name in msg else f"{name}: {msg}") from None
    except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError) as exc:
        raise DataError(f"{name}: the image is damaged and cannot be decoded ({exc})") from None


@dataclass
class PageSession:
    """One uploaded page and its latest restoration."""

    id: str
    name: str
    model: str
    layout: str
    grey: np.ndarray
    rgb: np.ndarray | None
    input_png: bytes
    result: Any = None
    restored_png: bytes | None = None
    seconds: float = 0.0

    @property
    def stem(self) -> str:
        return Path(self.name).stem or "page"

    def record(self) -> dict[str, Any]:
        """The page's JSON record, as ``restoreae restore-page`` writes it."""
        return self.result.to_json(self.name)

    def to_json(self) -> dict[str, Any]:
        out = self.record()
        out.update(
            id=self.id,
            name=self.name,
            model=self.model,
            seconds=round(self.seconds, 3),
            images={
                "input": _data_url(self.input_png),
                "restored": _data_url(self.restored_png or b""),
            },
            download={
                "image": f"/download/page/{self.id}/restored.png",
                "json": f"/download/page/{self.id}/page.json",
                "image_name": f"{self.stem}-restored.png",
                "json_name": f"{self.stem}.json",
            },
        )
        return out


class PageService:
    """Runs page restorations on the web service's worker pool and keeps the recent pages."""

    def __init__(self, service: Any) -> None:
        self.service = service
        self._pages: OrderedDict[str, PageSession] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, page_id: str) -> PageSession:
        with self._lock:
            session = self._pages.get(page_id)
        if session is None:
            raise HTTPException(404, f"no page {page_id!r} (pages are kept for a while only)")
        return session

    def _keep(self, session: PageSession) -> None:
        with self._lock:
            self._pages[session.id] = session
            while len(self._pages) > MAX_KEPT_PAGES:
                self._pages.popitem(last=False)

    def _restore(
        self,
        session: PageSession,
        text: str | None = None,
        characters: list[dict] | None = None,
    ) -> PageSession:
        from restoreae.restore.page_restore import restore_page

        restorer = self.service.restorer(session.model)
        kwargs: dict[str, Any] = {}
        if characters is not None:
            kwargs = {
                "boxes": [c["box"] for c in characters],
                "chars": [c.get("char") or None for c in characters],
                "columns": [int(c.get("column") or 0) for c in characters],
            }
        t0 = time.perf_counter()
        image = session.rgb if session.rgb is not None else session.grey
        with self.service._infer_locks[session.model], warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            result = restore_page(restorer, image, text=text, layout=session.layout, **kwargs)
        session.seconds = time.perf_counter() - t0
        session.result = result
        session.restored_png = encode_png(result.restored)
        return session

    def create(self, name: str, data: bytes, model: str, layout: str, text: str | None):
        grey, rgb = decode_page(data, name, self.service.max_image_side)
        session = PageSession(
            id=uuid.uuid4().hex,
            name=name,
            model=model,
            layout=layout,
            grey=grey,
            rgb=rgb,
            input_png=encode_png(rgb if rgb is not None else grey),
        )
        self._restore(session, text=text)
        self._keep(session)
        return session

    def again(self, page_id: str, characters: list[dict]) -> PageSession:
        return self._restore(self.get(page_id), characters=characters)


def _check_characters(body: Any) -> list[dict]:
    """The ``characters`` of a correction request, checked; raises HTTPException(400)."""
    from restoreae.restore.api import validate_char

    if not isinstance(body, dict) or not isinstance(body.get("characters"), list):
        raise HTTPException(400, 'expected JSON {"characters": [{"box": [x0, y0, x1, y1], ...}]}')
    chars = body["characters"]
    if len(chars) > MAX_BOXES:
        raise HTTPException(400, f"too many characters: at most {MAX_BOXES}")
    out = []
    for k, c in enumerate(chars):
        box = c.get("box") if isinstance(c, dict) else None
        if not (
            isinstance(box, list) and len(box) == 4 and all(isinstance(v, int | float) for v in box)
        ):
            raise HTTPException(400, f"characters[{k}].box: expected [x0, y0, x1, y1] numbers")
        char = c.get("char")
        if char is not None and str(char).strip():
            try:
                char = validate_char(str(char))
            except RestoreAEError as exc:
                raise HTTPException(400, f"characters[{k}].char: {exc}") from None
        else:
            char = None
        column = c.get("column", 0)
        out.append({"box": box, "char": char, "column": column if isinstance(column, int) else 0})
    return out


def _attachment(data: bytes, fname: str, media_type: str) -> Response:
    ascii_name = fname.encode("ascii", "replace").decode().replace("?", "_").replace('"', "_")
    disposition = f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(fname)}"
    return Response(data, media_type=media_type, headers={"Content-Disposition": disposition})


def add_page_routes(app: FastAPI, service: Any, max_upload_bytes: int) -> PageService:
    """Add the page-mode endpoints (see the module docstring) to ``app``."""
    pages = PageService(service)

    async def run(fn, *args):
        return await asyncio.wrap_future(service._executor.submit(fn, *args))

    def model_of(value: Any) -> str:
        model = str(value or "") or service.default_model
        if model is None:
            raise HTTPException(
                503, "no model available: install the shipped model or start with --model PATH"
            )
        if model not in service.model_paths:
            raise HTTPException(
                400, f"unknown model {model!r}; available: {', '.join(service.model_paths)}"
            )
        return model

    @app.post("/api/page")
    async def page_create(request: Request) -> JSONResponse:
        form = await request.form(max_files=1, max_fields=8)
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise HTTPException(400, "no page uploaded: choose one image (field 'file')")
        model = model_of(form.get("model"))
        layout = str(form.get("layout") or "columns")
        if layout not in LAYOUTS:
            raise HTTPException(400, f"layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
        text = str(form.get("text") or "").strip() or None
        name = PureWindowsPath(upload.filename or "").name or "page"
        data = await upload.read(max_upload_bytes + 1)
        await upload.close()
        if len(data) > max_upload_bytes:
            raise HTTPException(413, f"{name}: the file is larger than the upload limit")
        try:
            session = await run(pages.create, name, data, model, layout, text)
        except RestoreAEError as exc:
            raise HTTPException(400, str(exc)) from None
        return JSONResponse(session.to_json())

    @app.post("/api/page/{page_id}")
    async def page_again(page_id: str, request: Request) -> JSONResponse:
        try:
            body = json.loads(await request.body())
        except ValueError:
            raise HTTPException(400, "the request body is not JSON") from None
        characters = _check_characters(body)
        pages.get(page_id)
        try:
            session = await run(pages.again, page_id, characters)
        except RestoreAEError as exc:
            raise HTTPException(400, str(exc)) from None
        return JSONResponse(session.to_json())

    @app.get("/download/page/{page_id}/restored.png")
    async def page_png(page_id: str) -> Response:
        session = pages.get(page_id)
        return _attachment(session.restored_png or b"", f"{session.stem}-restored.png", "image/png")

    @app.get("/download/page/{page_id}/page.json")
    async def page_json(page_id: str) -> Response:
        session = pages.get(page_id)
        data = json.dumps(session.record(), ensure_ascii=False, indent=1).encode("utf-8")
        return _attachment(data, f"{session.stem}.json", "application/json")

    return pages
