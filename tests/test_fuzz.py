"""Fuzzing the input paths with Hypothesis: image bytes, sizes, modes, formats and CSV text.

Whatever comes in, ``restoreae restore`` must answer with a result or a one-line error naming the
file — never a traceback — and the web page's decoder and the chars-CSV reader must raise only
their own errors. Bounded in time: a fixed number of derandomized examples (reproducible in CI),
no example database written into the repository.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from restoreae.errors import RestoreAEError  # noqa: E402

FUZZ = settings(
    max_examples=50,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

MODES = ["1", "L", "LA", "P", "RGB", "RGBA", "CMYK", "I;16", "I", "F"]
FORMATS = ["PNG", "JPEG", "TIFF", "BMP", "WEBP", "GIF"]
SIZES = st.one_of(
    st.tuples(st.integers(1, 48), st.integers(1, 48)),
    st.tuples(st.just(1), st.integers(100, 4000)),  # long thin strips
    st.tuples(st.integers(100, 4000), st.integers(1, 2)),
)


class IdentityBackend:
    """Test double of a 2-channel model of size 32: returns the damaged-glyph channel."""

    metadata = {"img_size": 32, "in_chans": 2}
    img_size, in_chans = 32, 2

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        return batch[:, :1].copy()


@st.composite
def image_files(draw) -> bytes:
    """Bytes of an image in some mode, size and format — or those bytes cut or corrupted, or
    random bytes."""
    kind = draw(st.sampled_from(["image", "image", "cut", "flip", "random"]))
    if kind == "random":
        return draw(st.binary(min_size=0, max_size=400))
    h, w = draw(SIZES)
    mode = draw(st.sampled_from(MODES))
    fmt = draw(st.sampled_from(FORMATS))
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    pattern = draw(st.sampled_from(["noise", "flat", "stroke"]))
    grey = (
        rng.integers(0, 256, (h, w), dtype=np.uint8)
        if pattern == "noise"
        else np.full((h, w), int(rng.integers(0, 256)), np.uint8)
    )
    if pattern == "stroke":
        grey[h // 3 : max(h // 3 + 1, 2 * h // 3), w // 4 : max(w // 4 + 1, w // 2)] = (
            255 - grey[0, 0]
        )
    img = Image.fromarray(grey).convert(mode) if mode not in ("I;16",) else None
    if img is None:
        img = Image.fromarray(grey.astype(np.uint16) * 257)
    buf = io.BytesIO()
    try:
        img.save(buf, format=fmt)
    except (OSError, ValueError, KeyError):
        img.convert("L").save(buf, format="PNG")
    data = buf.getvalue()
    if kind == "cut":
        data = data[: draw(st.integers(0, max(0, len(data) - 1)))]
    elif kind == "flip" and data:
        pos = draw(st.integers(0, len(data) - 1))
        data = data[:pos] + bytes([data[pos] ^ 0xFF]) + data[pos + 1 :]
    return data


@pytest.fixture
def identity_model(monkeypatch):
    import restoreae.restore.api as api

    real = api.Restorer
    monkeypatch.setattr(api, "Restorer", lambda *a, **k: real(backend=IdentityBackend()))


@FUZZ
@given(data=image_files(), ext=st.sampled_from([".png", ".jpg", ".tif", ".bmp", ".webp"]))
def test_restore_cli_never_crashes(identity_model, tmp_path_factory, capsys, data, ext) -> None:
    from restoreae.cli import main
    from restoreae.restore.command import RESULTS_CSV

    folder = tmp_path_factory.mktemp("fuzz")
    path = folder / f"input{ext}"
    path.write_bytes(data)
    rc = main(["restore", str(path), "-o", str(folder / "out"), "--char", "永"])
    err = capsys.readouterr().err
    assert rc in (0, 1), err
    assert "Traceback" not in err
    if rc == 1:
        lines = [ln for ln in err.splitlines() if ln.startswith("error:")]
        assert lines and all(str(path) in ln for ln in lines), err
    else:
        # the restored image, beside the per-file results table
        out = [p for p in (folder / "out").iterdir() if p.name != RESULTS_CSV]
        assert len(out) == 1 and Image.open(out[0]).size == Image.open(path).size


@FUZZ
@given(data=image_files())
def test_web_decoder_raises_only_page_errors(data) -> None:
    from restoreae.web.images import PageError, decode_image

    try:
        grey = decode_image(data, "upload.png", max_side=4096)
    except PageError as exc:
        assert str(exc).startswith("upload.png") and exc.zh.startswith("upload.png")
    else:
        assert grey.dtype == np.uint8 and grey.ndim == 2


CSV_TEXT = st.one_of(
    st.text(max_size=200),
    st.lists(
        st.tuples(
            st.sampled_from(["a.png", "b.png", "", " ", "dir/a.png", "path", "x,y"]),
            st.one_of(
                st.sampled_from(["永", "和", "char", "", "ab", "A", "\u3000", "𠀀"]),
                st.text(max_size=3),
            ),
        ),
        max_size=6,
    ).map(lambda rows: "\n".join(f"{p},{c}" for p, c in rows)),
)


@FUZZ
@given(text=CSV_TEXT)
def test_chars_csv_reader_raises_only_its_errors(tmp_path_factory, text) -> None:
    from restoreae.restore.charmap import CharMap

    path = tmp_path_factory.mktemp("csv") / "chars.csv"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        table = CharMap(path)
    except RestoreAEError as exc:
        assert str(path) in str(exc)
        return
    assert len(table) >= 1
    for name in ("a.png", "b.png", "c.png"):
        try:
            char = table.lookup(Path(name), name)
        except RestoreAEError as exc:
            assert name in str(exc)
        else:
            assert char is None or len(char) == 1
    assert all(line.startswith(f"{path}:") for line in table.unused())
