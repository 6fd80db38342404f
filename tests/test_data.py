"""Tests of restoreae.data: charsets, font discovery + rendering, reference glyphs, corpus."""

from __future__ import annotations

import json
import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from restoreae.cli import main
from restoreae.data.charsets import GB2312_LEVEL1, get_charset
from restoreae.data.corpus import SPLITS, Corpus, build_corpus, format_summary, load_writer_image
from restoreae.data.fonts import (
    FontFace,
    centre_glyph,
    discover_fonts,
    face_covers,
    load_face,
    render_glyph,
)
from restoreae.data.reference import ReferenceRenderer
from restoreae.errors import DataError

KAI = Path("/usr/share/fonts/truetype/arphic-gkai00mp/gkai00mp.ttf")
WENKAI = Path("/usr/share/fonts/truetype/lxgw-wenkai/LXGWWenKai-Regular.ttf")
WENKAI_BOLD = Path("/usr/share/fonts/truetype/lxgw-wenkai/LXGWWenKai-Bold.ttf")
UKAI = Path("/usr/share/fonts/truetype/arphic/ukai.ttc")
NOTO_SANS = Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc")
DEJAVU = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")


def need(*paths: Path) -> None:
    for p in paths:
        if not p.is_file():
            pytest.skip(f"font not installed: {p}")


def ink_box(img: np.ndarray, level: int = 32) -> tuple[int, int, int, int]:
    rows = np.flatnonzero((img >= level).any(axis=1))
    cols = np.flatnonzero((img >= level).any(axis=0))
    return rows[0], rows[-1], cols[0], cols[-1]


@pytest.fixture(scope="module")
def small_faces() -> list[FontFace]:
    """Three writers in two families: AR PL KaitiM GB (the reference), LXGW WenKai Regular+Bold."""
    need(KAI, WENKAI, WENKAI_BOLD)
    return [load_face(KAI), load_face(WENKAI), load_face(WENKAI_BOLD)]


# --------------------------------------------------------------------------- charsets
def test_gb2312_level1_has_3755_known_chars() -> None:
    assert len(GB2312_LEVEL1) == 3755
    assert len(set(GB2312_LEVEL1)) == 3755
    assert GB2312_LEVEL1[0] == "啊" and GB2312_LEVEL1[-1] == "座"
    for ch in "中国书汉字爱":
        assert ch in GB2312_LEVEL1
    assert "乂" not in GB2312_LEVEL1  # a level-2 character
    leads = {ch.encode("gb2312")[0] for ch in GB2312_LEVEL1}
    assert min(leads) == 0xB0 and max(leads) == 0xD7
    assert get_charset("gb2312-1") == GB2312_LEVEL1


def test_get_charset_file(tmp_path: Path) -> None:
    f = tmp_path / "chars.txt"
    f.write_text("中 国\n书中\n\n 汉国\n", encoding="utf-8")
    assert get_charset(str(f)) == "中国书汉"
    (tmp_path / "empty.txt").write_text(" \n\n", encoding="utf-8")
    with pytest.raises(DataError, match="empty.txt"):
        get_charset(str(tmp_path / "empty.txt"))
    (tmp_path / "bad.txt").write_bytes("中国".encode("gb2312"))
    with pytest.raises(DataError, match="bad.txt"):
        get_charset(str(tmp_path / "bad.txt"))
    with pytest.raises(DataError, match="nope"):
        get_charset("nope")


# --------------------------------------------------------------------------- fonts
def test_render_glyph_polarity_centre_and_relative_size() -> None:
    need(KAI)
    face = load_face(KAI)
    assert face.writer_id == "arphic-kaitim-gb" and face.family == "arphic-kaitim"
    big = render_glyph(face, "国", 128)
    small = render_glyph(face, "一", 128)
    for img in (big, small):
        assert img.shape == (128, 128) and img.dtype == np.uint8
        assert img.max() == 255 and img[0].max() == 0 and img[:, 0].max() == 0  # white on black
        r0, r1, c0, c1 = ink_box(img, 1)
        assert abs((r0 + r1) / 2 - 63.5) <= 1 and abs((c0 + c1) / 2 - 63.5) <= 1  # centred
        assert max(r1 - r0, c1 - c0) + 1 <= 0.92 * 128 + 1
        assert len(np.unique(img)) > 10  # anti-aliased
    rb, rs = ink_box(big), ink_box(small)
    assert rb[1] - rb[0] > 60  # 国 spans most of the em (0.8 * 128)
    assert rs[1] - rs[0] < 20  # 一 stays thin: relative sizes are kept
    assert np.array_equal(render_glyph(face, "国", 128), big)  # deterministic
    assert render_glyph(face, "國", 128) is None  # a GB2312-only font lacks traditional forms


def test_centre_glyph_scales_down_large_ink() -> None:
    ink = np.full((200, 50), 255, np.uint8)
    out = centre_glyph(ink, 128)
    r0, r1, c0, c1 = ink_box(out)
    assert r1 - r0 + 1 <= round(0.92 * 128) and r1 - r0 + 1 >= round(0.92 * 128) - 1
    assert 28 <= c1 - c0 + 1 <= 31  # aspect kept: 50/200 * 118
    assert abs((r0 + r1) / 2 - 63.5) <= 1


def test_coverage_cmap_and_ink_checks() -> None:
    need(DEJAVU, NOTO_SANS)
    dejavu = load_face(DEJAVU)
    assert render_glyph(dejavu, "汉", 64) is None  # a Latin font does not cover Han
    assert render_glyph(dejavu, "A", 64) is not None
    noto = load_face(NOTO_SANS, 2)
    # U+3000 IDEOGRAPHIC SPACE is in the cmap but draws no ink: not covered
    assert face_covers(noto, "\u3000")
    assert render_glyph(noto, "\u3000", 64) is None
    assert render_glyph(noto, "汉", 64) is not None


def test_discover_merges_duplicate_faces() -> None:
    faces = discover_fonts()
    if len(faces) < 3:
        pytest.skip("too few CJK fonts installed")
    ids = [f.writer_id for f in faces]
    assert len(ids) == len(set(ids)) and ids == sorted(ids)
    assert all(f.family and f.name for f in faces)
    assert not any("dejavu" in f.writer_id for f in faces)
    if NOTO_SANS.is_file():
        noto = [f for f in faces if f.family == "noto-sans-cjk" and f.path.name == NOTO_SANS.name]
        assert len(noto) == 1, noto  # JP/KR/SC/TC/HK and Mono faces are one writer
        assert noto[0].face_index == 2 and "SC" in noto[0].name  # the simplified face is kept
    wenkai = [f for f in faces if f.family == "lxgw-wenkai"]
    if WENKAI.is_file():
        assert not any("mono" in f.writer_id for f in wenkai)  # WenKai Mono == WenKai
        assert {"lxgw-wenkai", "lxgw-wenkai-bold"} <= {f.writer_id for f in wenkai}
    wqy = [f for f in faces if f.family == "wenquanyi-zen-hei"]
    assert len(wqy) <= 1  # Zen Hei Mono / Sharp are duplicates


def test_font_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="missing.ttf"):
        discover_fonts([tmp_path / "missing.ttf"], system=False)
    junk = tmp_path / "junk.ttf"
    junk.write_bytes(b"this is not a font" * 10)
    with pytest.raises(DataError, match="junk.ttf"):
        discover_fonts([junk], system=False)
    with pytest.raises(DataError, match="nofonts"):
        discover_fonts(extra_dirs=[tmp_path / "nofonts"], system=False)


def test_user_font_folder(tmp_path: Path) -> None:
    need(WENKAI, DEJAVU)
    folder = tmp_path / "fonts"
    folder.mkdir()
    os.symlink(WENKAI, folder / "wk.ttf")
    os.symlink(DEJAVU, folder / "latin.ttf")
    faces = discover_fonts(extra_dirs=[folder], system=False)
    assert [f.writer_id for f in faces] == ["lxgw-wenkai"]  # DejaVu is no CJK writer


# --------------------------------------------------------------------------- reference
def test_reference_renderer_traditional() -> None:
    need(KAI, UKAI)
    kai = load_face(KAI)
    plain = ReferenceRenderer(size=64)  # default: the GB Kai font
    assert plain.font == KAI and plain.form("书") == "书"
    assert np.array_equal(plain.render("书"), render_glyph(kai, "书", 64))
    trad = ReferenceRenderer(traditional=True, size=64)  # default: AR PL UKai TW
    assert trad.font == UKAI and trad.face_index == 2
    assert trad.form("书") == "書" and trad.form("中") == "中"
    assert np.array_equal(trad.render("书"), render_glyph(load_face(UKAI, 2), "書", 64))
    assert not np.array_equal(trad.render("书"), trad.render("中"))
    # a font without the traditional form falls back to the simplified character
    kai_trad = ReferenceRenderer(KAI, traditional=True, size=64)
    assert kai_trad.form("书") == "书"
    assert np.array_equal(kai_trad.render("书"), plain.render("书"))
    with pytest.raises(DataError, match="no installed font draws"):
        ReferenceRenderer(size=64, fallback=False).render("\u4e02")  # 丂: not in GB2312
    assert plain.draw("\u4e02").fallback  # the fallback chain draws it
    with pytest.raises(DataError, match="nofont.ttf"):
        ReferenceRenderer("/nonexistent/nofont.ttf")


# --------------------------------------------------------------------------- corpus
def test_tiny_corpus_manifest_and_splits(tiny_corpus: Path, gb_chars: str) -> None:
    c = Corpus.open(tiny_corpus)
    m = json.loads((tiny_corpus / "manifest.json").read_text(encoding="utf-8"))
    assert m["format"] == 1 and m["size"] == 64 and m["chars"] == gb_chars
    assert c.chars == gb_chars and c.size == 64
    n_w = len(c.writers)
    assert c.glyphs.shape == (n_w, 48, 64, 64) and c.glyphs.dtype == np.uint8
    assert isinstance(c.glyphs, np.memmap)
    assert c.coverage.shape == (n_w, 48) and c.reference.shape == (48, 64, 64)
    for w, row in zip(c.writers, c.coverage, strict=True):
        assert set(w) >= {"id", "family", "name", "source", "path", "face_index", "n_covered"}
        assert w["n_covered"] == row.sum()
    assert c.coverage.any(axis=0).all()
    # uncovered glyphs are zeros, covered ones have ink and match their PNG
    assert c.glyphs[~c.coverage].max(initial=0) == 0
    wi, ci = np.argwhere(c.coverage)[len(np.argwhere(c.coverage)) // 2]
    png = tiny_corpus / "images" / c.chars[ci] / f"{c.writers[wi]['id']}.png"
    assert np.array_equal(cv2.imread(str(png), cv2.IMREAD_GRAYSCALE), c.glyphs[wi, ci])
    assert c.glyphs[wi, ci].max() > 200
    # splits: whole families, one each; reference family never in test
    sp = m["splits"]
    fam = {w["id"]: w["family"] for w in c.writers}
    val_f = {fam[w] for w in sp["val_writers"]}
    test_f = {fam[w] for w in sp["test_writers"]}
    assert len(val_f) == 1 and len(test_f) == 1 and not val_f & test_f
    assert set(sp["val_writers"]) == {w for w, f in fam.items() if f in val_f}
    assert set(sp["test_writers"]) == {w for w, f in fam.items() if f in test_f}
    ref_family = ReferenceRenderer(m["reference"]["font"], m["reference"]["face_index"]).face.family
    assert ref_family not in test_f
    assert len(sp["heldout_chars"]) == 2 and set(sp["heldout_chars"]) <= set(gb_chars)
    pairs = {s: c.pairs(s) for s in SPLITS}
    ids = c.writer_ids
    train_w = {ids[i] for i in pairs["train"][0]}
    held_w = {ids[i] for s in ("val", "heldout-writers") for i in pairs[s][0]}
    assert train_w and not train_w & held_w
    assert {ids[i] for i in pairs["heldout-writers"][0]} <= set(sp["test_writers"])
    train_fams = {fam[w] for w in train_w}
    assert not train_fams & (val_f | test_f)
    train_chars = {c.chars[i] for i in pairs["train"][1]} | {c.chars[i] for i in pairs["val"][1]}
    assert not train_chars & set(sp["heldout_chars"])
    assert {c.chars[i] for i in pairs["heldout-chars"][1]} <= set(sp["heldout_chars"])
    assert {ids[i] for i in pairs["heldout-chars"][0]} <= train_w
    for w, ch in pairs.values():
        assert w.dtype == np.int64 and c.coverage[w, ch].all()
    # every covered pair is in exactly one split, except held-out writers x held-out chars
    held_c = [c.chars.index(ch) for ch in sp["heldout_chars"]]
    unused = c.coverage[np.ix_(c.split_writers("val"), held_c)].sum()
    assert sum(len(p[0]) for p in pairs.values()) == c.coverage.sum() - unused
    with pytest.raises(DataError, match="unknown split"):
        c.pairs("test")
    text = format_summary(c)
    assert "reference font" in text and "heldout-writers" in text


def test_rerun_skips_and_rebuilds_on_change(tmp_path: Path, small_faces: list[FontFace]) -> None:
    out = tmp_path / "c"
    kw = dict(val_writers=0, test_writers=1, heldout_chars=0.0, seed=3)
    build_corpus(out, "中国书法", small_faces, 32, **kw)
    pngs = sorted((out / "images").rglob("*.png"))
    assert len(pngs) == 12
    arrays = [out / "glyphs.npy", out / "coverage.npy", out / "reference.npy"]
    stamp = {p: p.stat().st_mtime_ns for p in [*pngs, *arrays]}
    build_corpus(out, "中国书法", small_faces, 32, **kw)
    assert {p: p.stat().st_mtime_ns for p in stamp} == stamp  # nothing re-rendered or rebuilt
    # the test family is the non-reference one (the reference font's family is never in test)
    assert Corpus.open(out).splits["test_writers"] == ["lxgw-wenkai", "lxgw-wenkai-bold"]
    # one more character: only its PNGs are new, arrays are rebuilt
    build_corpus(out, "中国书法字", small_faces, 32, **kw)
    c = Corpus.open(out)
    assert c.glyphs.shape == (3, 5, 32, 32)
    assert all(p.stat().st_mtime_ns == stamp[p] for p in pngs)
    assert (out / "glyphs.npy").stat().st_mtime_ns != stamp[out / "glyphs.npy"]
    # a deleted PNG is rendered again, identical
    old = c.glyphs[1, 0].copy()
    (out / "images" / "中" / "lxgw-wenkai.png").unlink()
    build_corpus(out, "中国书法字", small_faces, 32, **kw)
    assert np.array_equal(Corpus.open(out).glyphs[1, 0], old)
    assert not list(out.rglob("*.tmp*"))  # no temporary files left
    with pytest.raises(DataError, match="size 32"):
        build_corpus(out, "中国书法字", small_faces, 48, **kw)


def test_parallel_build_matches_serial(tmp_path: Path, small_faces: list[FontFace]) -> None:
    kw = dict(val_writers=0, test_writers=1, heldout_chars=0.25, seed=1)
    a = Corpus.open(build_corpus(tmp_path / "a", "天地玄黄宇宙洪荒", small_faces, 32, **kw))
    b = Corpus.open(
        build_corpus(tmp_path / "b", "天地玄黄宇宙洪荒", small_faces, 32, workers=2, **kw)
    )
    assert np.array_equal(a.glyphs, b.glyphs) and np.array_equal(a.coverage, b.coverage)
    assert a.splits == b.splits and len(a.splits["heldout_chars"]) == 2


def test_corpus_errors(tmp_path: Path, small_faces: list[FontFace]) -> None:
    kw = dict(val_writers=0, test_writers=1, heldout_chars=0.0)
    with pytest.raises(DataError, match="empty"):
        build_corpus(tmp_path / "e", " \n", small_faces, 32, **kw)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(DataError, match="not writable"):
        build_corpus(blocker / "corpus", "中", small_faces, 32, **kw)
    # rare characters (outside GB2312 / in CJK Ext-B) that none of the three fonts maps
    missing = [ch for ch in "丂𠀀𪚥" if not any(face_covers(f, ch) for f in small_faces)]
    assert missing
    with pytest.raises(DataError, match="drawn by no writer") as err:
        build_corpus(tmp_path / "u", "中" + "".join(missing), small_faces, 32, **kw)
    assert all(ch in str(err.value) for ch in missing)
    with pytest.raises(DataError, match="families"):
        build_corpus(tmp_path / "f", "中", small_faces, 32, val_writers=1, test_writers=1)
    # reader: missing / corrupt manifest, missing array, shape mismatch
    with pytest.raises(DataError, match="manifest.json"):
        Corpus.open(tmp_path / "nothing")
    good = build_corpus(tmp_path / "g", "中国", small_faces, 32, **kw)
    manifest = (good / "manifest.json").read_text(encoding="utf-8")
    (good / "manifest.json").write_text(manifest[:50], encoding="utf-8")
    with pytest.raises(DataError, match="corrupt"):
        Corpus.open(good)
    m = json.loads(manifest)
    del m["splits"]
    (good / "manifest.json").write_text(json.dumps(m), encoding="utf-8")
    with pytest.raises(DataError, match="splits"):
        Corpus.open(good)
    m = json.loads(manifest)
    m["chars"] = "中国书"
    (good / "manifest.json").write_text(json.dumps(m), encoding="utf-8")
    with pytest.raises(DataError, match="glyphs.npy"):
        Corpus.open(good)
    (good / "manifest.json").write_text(manifest, encoding="utf-8")
    (good / "coverage.npy").unlink()
    with pytest.raises(DataError, match="coverage.npy"):
        Corpus.open(good)


def test_user_image_folder(tmp_path: Path, small_faces: list[FontFace]) -> None:
    root = tmp_path / "scans"
    source = {}
    for ch in "中国":
        glyph = render_glyph(small_faces[1], ch, 90)
        # black ink on a light grey, non-square RGB page
        page = np.full((120, 100), 230, np.uint8)
        page[15:105, 5:95] = 230 - (glyph.astype(np.int32) * 230 // 255)
        (root / ch).mkdir(parents=True)
        cv2.imwrite(str(root / ch / "alice.png"), cv2.cvtColor(page, cv2.COLOR_GRAY2BGR))
        source[ch] = glyph
    (root / "书").mkdir()
    cv2.imwrite(str(root / "书" / "alice.jpg"), np.full((40, 40), 255, np.uint8))  # blank page
    img = load_writer_image(root / "中" / "alice.png", 64)
    assert img.shape == (64, 64) and img.dtype == np.uint8
    assert img[0].max() == 0 and img.max() >= 250  # normalised to white ink on black
    # the same page drawn white on black: padded to 120 x 120, resized to 64, centred on its ink
    square = np.zeros((120, 120), np.uint8)
    square[15:105, 15:105] = source["中"]
    small = cv2.resize(square, (64, 64), interpolation=cv2.INTER_AREA)
    r0, r1, c0, c1 = ink_box(small)
    expected = centre_glyph(small[r0 : r1 + 1, c0 : c1 + 1], 64)
    inter = np.logical_and(img > 127, expected > 127).sum()
    union = np.logical_or(img > 127, expected > 127).sum()
    assert inter / union > 0.7
    assert load_writer_image(root / "书" / "alice.jpg", 64) is None
    out = build_corpus(
        tmp_path / "c",
        "中国书",
        small_faces[:1],
        64,
        image_dirs=[root],
        val_writers=0,
        test_writers=1,
        heldout_chars=0.0,
    )
    c = Corpus.open(out)
    alice = c.writers[c.writer_index("alice")]
    assert alice["source"] == "images" and alice["n_covered"] == 2
    assert c.splits["test_writers"] == ["alice"]
    assert np.array_equal(c.glyph("alice", "中"), img)
    assert c.glyph("alice", "书").max() == 0 and not c.coverage[c.writer_index("alice"), 2]
    (root / "中" / "broken.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match="broken.png"), pytest.warns(UserWarning, match="书国"):
        build_corpus(
            tmp_path / "d",
            "中",
            small_faces[:1],
            64,
            image_dirs=[root],
            test_writers=0,
            val_writers=0,
        )


def test_build_data_cli(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    need(KAI, WENKAI)
    charset = tmp_path / "chars.txt"
    charset.write_text("永字八法\n", encoding="utf-8")
    out = tmp_path / "corpus"
    args = ["build-data", str(out), "--size", "32", "--charset", str(charset), "--no-system-fonts"]
    args += ["--font", str(KAI), "--font", str(WENKAI), "--val-writers", "0", "--test-writers", "1"]
    args += ["--reference-font", "arphic-kaitim-gb", "--traditional"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "lxgw-wenkai" in printed and "test" in printed
    c = Corpus.open(out)
    assert c.manifest["charset"] == "chars.txt" and c.manifest["reference"]["traditional"] is True
    assert main([*args[:6], "--no-system-fonts", "--font", str(tmp_path / "nope.ttf")]) == 2
    assert "nope.ttf" in capsys.readouterr().err


def test_pinned_held_out_families(tmp_path: Path, small_faces: list[FontFace]) -> None:
    """Named families keep the same held-out writers whatever other fonts are installed."""
    need(UKAI)
    faces = [*small_faces, load_face(UKAI)]
    out = build_corpus(
        tmp_path / "c",
        "中国人",
        faces,
        32,
        val_writers=["arphic-ukai"],
        test_writers=["lxgw-wenkai"],
        heldout_chars=0.0,
    )
    splits = json.loads((out / "manifest.json").read_text(encoding="utf-8"))["splits"]
    assert splits["test_families"] == ["lxgw-wenkai"] and splits["val_families"] == ["arphic-ukai"]
    assert sorted(splits["test_writers"]) == ["lxgw-wenkai", "lxgw-wenkai-bold"]
    kw = dict(heldout_chars=0.0)
    with pytest.raises(DataError, match="unknown writer family no-such"):
        build_corpus(tmp_path / "x", "中", faces, 32, val_writers=0, test_writers=["no-such"], **kw)
    with pytest.raises(DataError, match="reference font's family"):
        build_corpus(
            tmp_path / "y", "中", faces, 32, val_writers=0, test_writers=["arphic-kaitim"], **kw
        )
