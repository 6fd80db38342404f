"""Any character: the reference font chain, traditional and rare forms, ``auto`` and its
recogniser, the ``+traditional`` charset, and the one error for a character no font draws."""

from __future__ import annotations

import csv
import itertools
import sys
from pathlib import Path

import numpy as np
import pytest

from restoreae.cli import main
from restoreae.data.fonts import load_face, render_glyph
from restoreae.errors import DataError, RestoreAEError
from restoreae.models.weights import shipped_path

KAI = Path("/usr/share/fonts/truetype/arphic-gkai00mp/gkai00mp.ttf")
UKAI = Path("/usr/share/fonts/truetype/arphic/ukai.ttc")
TW_KAI = Path("/usr/share/fonts/truetype/cns11643/TW-Kai-98_1.ttf")
NOTO_SERIF = Path("/usr/share/fonts/opentype/noto/NotoSerifCJK-Regular.ttc")
HANA_B = Path("/usr/share/fonts/truetype/hanazono/HanaMinB.ttf")
#: Unassigned (U+3134F, after CJK Extension G): in the accepted ranges, drawn by no font.
NO_FONT_CHAR = "\U0003134f"
MODEL_SIZE = 64
#: The web app answers only requests naming its own (loopback) host.
WEB = "http://127.0.0.1:8765"


def need(*paths: Path) -> None:
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        pytest.skip(f"font not installed: {', '.join(missing)}")


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    """A small untrained 2-channel model saved as `restoreae train` saves one, as if trained on a
    corpus with traditional forms (so characters are drawn in the form given)."""
    import torch

    from restoreae.models.io import save_model
    from restoreae.models.registry import create_model

    torch.manual_seed(0)
    model = create_model("unet_mobilenetv3_small", in_chans=2, img_size=MODEL_SIZE)
    path = tmp_path_factory.mktemp("anychar") / "tiny.safetensors"
    meta = {
        "img_size": MODEL_SIZE,
        "in_chans": 2,
        "reference_font": str(KAI),
        "traditional": False,
        "traditional_chars": 1000,
    }
    save_model(model.eval(), path, metadata=meta)
    return path


@pytest.fixture(scope="module")
def shipped():
    if not shipped_path().is_file():
        pytest.skip("the shipped model is not installed")
    from restoreae.restore.api import Restorer

    return Restorer(shipped_path())  # the default backend (ONNX Runtime on the CPU)


def _scan(char: str, size: int = 96) -> np.ndarray:
    """A held-out writer's glyph (Noto Serif CJK SC) as a scan: dark ink on light paper."""
    need(NOTO_SERIF)
    g = render_glyph(load_face(NOTO_SERIF, 2), char, size)
    assert g is not None
    return (235 - (g.astype(np.int16) * 210) // 255).astype(np.uint8)


# --------------------------------------------------------------------------- reference chain
def test_chain_picks_the_first_font_that_draws_the_character() -> None:
    from restoreae.data.reference import ReferenceRenderer, installed_chain

    need(KAI, UKAI, TW_KAI, NOTO_SERIF, HANA_B)
    names = [f.name for f in installed_chain()]
    assert names[:2] == ["AR PL UKai TW", "TW-Kai"]
    assert (
        names.index("Noto Serif CJK SC") < names.index("Noto Sans CJK SC") < names.index("HanaMinB")
    )
    r = ReferenceRenderer(KAI, size=64)
    expected = {
        "书": "AR PL KaitiM GB",  # the model's own font
        "書": "AR PL UKai TW",  # traditional: Kai, Taiwan forms
        "壽": "AR PL UKai TW",
        "\u3400": "TW-Kai",  # Extension A: CNS 11643 Kai
        "\u9fea": "Noto Serif CJK SC",  # Unicode 10 unified ideograph
        "\U0002b740": "HanaMinB",  # Extension D
    }
    for char, font in expected.items():
        ref = r.draw(char)
        assert (ref.font, ref.drawn, ref.fallback) == (font, char, font != "AR PL KaitiM GB"), char
        assert ref.glyph.shape == (64, 64) and ref.glyph.dtype == np.uint8 and ref.glyph.max() > 200
    ukai_tw = load_face(UKAI, 2)
    assert np.array_equal(r.render("書"), render_glyph(ukai_tw, "書", 64))
    # an explicit chain is followed in its order
    noto = load_face(NOTO_SERIF, 2)
    assert ReferenceRenderer(KAI, size=64, chain=[noto, ukai_tw]).draw("書").font == noto.name
    # without the chain the model's font is the only one
    with pytest.raises(DataError, match="no installed font draws"):
        ReferenceRenderer(KAI, size=64, fallback=False).render("書")


def test_forms_simplify_and_traditional() -> None:
    from restoreae.data.reference import (
        ReferenceRenderer,
        is_traditional_form,
        to_simplified,
        to_traditional,
    )

    need(KAI, UKAI)
    assert (
        to_simplified("書") == "书" and to_traditional("书") == "書" and to_simplified("中") == "中"
    )
    assert is_traditional_form("壽") and not is_traditional_form("寿")
    simp = ReferenceRenderer(KAI, size=64, simplify=True).draw("書")
    assert (simp.drawn, simp.font, simp.fallback) == ("书", "AR PL KaitiM GB", False)
    trad = ReferenceRenderer(UKAI, 2, traditional=True, size=64).draw("书")
    assert (trad.drawn, trad.font) == ("書", "AR PL UKai TW")
    assert trad.describe() == "書 · AR PL UKai TW"


def test_renderer_for_model_policy(monkeypatch) -> None:
    from restoreae.data import reference

    need(KAI, UKAI)
    meta = {"reference_font": str(KAI), "traditional": False}
    monkeypatch.setattr(reference, "SIMPLIFY_FOR_SIMPLIFIED_MODELS", True)
    assert reference.renderer_for_model(meta, 64).draw("書").drawn == "书"
    # a model whose corpus held traditional forms gets them as given
    mixed = reference.renderer_for_model({**meta, "traditional_chars": 1000}, 64)
    assert mixed.draw("書").drawn == "書"
    monkeypatch.setattr(reference, "SIMPLIFY_FOR_SIMPLIFIED_MODELS", False)
    assert reference.renderer_for_model(meta, 64).draw("書").drawn == "書"


# --------------------------------------------------------------------------- restoring
def test_traditional_and_rare_characters_restore(tiny_model) -> None:
    from restoreae.restore.api import Restorer

    need(KAI, UKAI, TW_KAI, NOTO_SERIF)
    r = Restorer(tiny_model, backend="torch")
    img = _scan("壽")
    plain = r.restore(img, char="寿")
    for char in ("書", "壽", "\u3400", "\u9fea"):
        out = r.restore(img, char=char)
        assert out.shape == img.shape and out.dtype == np.uint8
        assert not np.array_equal(out, plain)  # its own reference was used
        assert r.reference_glyph(char).drawn == char


def test_no_font_character_is_one_clear_error_per_interface(tiny_model, tmp_path, capsys) -> None:
    from fastapi.testclient import TestClient
    from PIL import Image

    from restoreae.data.reference import NoReferenceFontError, ReferenceRenderer
    from restoreae.restore.api import NoReferenceError, Restorer
    from restoreae.web.app import create_app

    need(KAI)
    with pytest.raises(NoReferenceFontError, match="U\\+3134F"):
        ReferenceRenderer(KAI, size=64).render(NO_FONT_CHAR)
    img = _scan("永")
    # Python API: names the char= argument
    with pytest.raises(NoReferenceError, match="char=") as info:
        Restorer(tiny_model, backend="torch").restore(img, char=NO_FONT_CHAR)
    assert "--" not in str(info.value) and "U+3134F" in str(info.value)
    # CLI: names the flags, exit status 1, the file named
    src = tmp_path / "x.png"
    Image.fromarray(img).save(src)
    rc = main(["restore", str(src), "-o", str(tmp_path / "out"), "--model", str(tiny_model),
               "--backend", "torch", "--char", NO_FONT_CHAR])  # fmt: skip
    err = capsys.readouterr().err
    assert rc == 1 and str(src) in err and "no installed font draws" in err
    assert "--char" in err and "--no-reference" in err and "char=" not in err
    # web page: names its field, no CLI flags
    with TestClient(create_app({"tiny": tiny_model}, backend="torch"), base_url=WEB) as client:
        job = client.post(
            "/api/restore",
            files=[("files", ("x.png", src.read_bytes(), "image/png"))],
            data={"char": NO_FONT_CHAR, "wait": "1"},
        ).json()
    (res,) = job["results"]
    assert not res["ok"] and "no installed font draws" in res["error"]
    assert "Character field" in res["error"] and "--" not in res["error"]
    assert "char=" not in res["error"]


def test_cli_results_csv_and_side_by_side_name_the_font(tiny_model, tmp_path) -> None:
    from PIL import Image

    need(KAI, UKAI)
    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(_scan("書")).save(src / "shu.png")
    Image.fromarray(_scan("永")).save(src / "yong.png")
    (tmp_path / "chars.csv").write_text("path,char\nshu.png,書\n", encoding="utf-8")
    out = tmp_path / "out"
    rc = main(["restore", str(src), "-o", str(out), "--model", str(tiny_model),
               "--backend", "torch", "--char", "永", "--chars-csv", str(tmp_path / "chars.csv"),
               "--side-by-side"])  # fmt: skip
    assert rc == 0
    rows = {Path(r["input"]).name: r for r in csv.DictReader((out / "restore-results.csv").open())}
    assert rows["shu.png"]["char"] == "書" and rows["shu.png"]["char_source"] == "csv"
    assert rows["shu.png"]["reference_font"] == "AR PL UKai TW"
    assert rows["yong.png"]["reference_font"] == "AR PL KaitiM GB"
    assert rows["yong.png"]["char_source"] == "given"
    assert (out / "shu.compare.png").is_file()


# --------------------------------------------------------------------------- recogniser
def test_single_char_ctc_matches_brute_force() -> None:
    from restoreae.evaluate.ocr import single_char_ctc

    rng = np.random.default_rng(0)
    t, c = 5, 4
    probs = rng.random((t, c))
    probs /= probs.sum(axis=1, keepdims=True)
    brute = np.zeros(c)
    for path in itertools.product(range(c), repeat=t):
        collapsed = [k for i, k in enumerate(path) if k != 0 and (i == 0 or path[i - 1] != k)]
        if len(collapsed) == 1:
            brute[collapsed[0]] += np.prod([probs[i, k] for i, k in enumerate(path)])
    np.testing.assert_allclose(single_char_ctc(probs), brute, rtol=1e-12)
    assert single_char_ctc(probs)[0] == 0.0
    with pytest.raises(ValueError):
        single_char_ctc(np.ones(3))


def test_recogniser_candidates_and_confidence() -> None:
    from restoreae.evaluate.ocr import OcrJudge

    need(NOTO_SERIF)
    judge = OcrJudge()
    face = load_face(NOTO_SERIF, 2)
    glyphs = [render_glyph(face, c, 96) for c in "永書"]
    cands = judge.candidates(glyphs, k=3)
    assert [c[0][0] for c in cands] == ["永", "書"]
    assert all(len(c) == 3 and c[0][1] > 0.5 >= c[1][1] for c in cands)
    conf = judge.confidence(glyphs, ["永", "永"])
    assert conf[0] > 0.9 and conf[1] < 0.1
    only_cjk = judge.candidates(glyphs, k=2, accept=lambda ch: ch != "永")
    assert "永" not in [c for c, _ in only_cjk[0]]


def test_missing_recogniser_is_a_clear_error(monkeypatch) -> None:
    from restoreae.evaluate.ocr import OcrJudge

    monkeypatch.setitem(sys.modules, "rapidocr_onnxruntime", None)
    monkeypatch.setitem(sys.modules, "rapidocr_onnxruntime.ch_ppocr_rec", None)
    with pytest.raises(RestoreAEError, match=r"restoreae\[ocr\]"):
        OcrJudge()


# --------------------------------------------------------------------------- auto
AUTO_CHARS = "永和山心書壽"


def test_auto_picks_the_right_character_on_a_held_out_writer(shipped) -> None:
    """Clean and lightly damaged (one seeded op) glyphs of Noto Serif CJK SC, a writer the
    shipped model never trained on, simplified and traditional."""
    from restoreae.damage.pipeline import DamageConfig, DamagePipeline
    from restoreae.restore.auto import AutoRestoration

    clean = [_scan(c, 128) for c in AUTO_CHARS]
    light = DamagePipeline(DamageConfig.from_dict({"ops": ["blob_noise", "erode_dilate"], "k": 1}))
    damaged = [
        255 - light(255 - img, np.random.default_rng([7, i]))[0] for i, img in enumerate(clean)
    ]
    for name, images in (("clean", clean), ("damaged", damaged)):
        found = shipped.restore_auto(images)
        assert all(isinstance(f, AutoRestoration) for f in found)
        picked = "".join(f.char or "?" for f in found)
        right = sum(a == b for a, b in zip(picked, AUTO_CHARS, strict=True))
        assert right >= len(AUTO_CHARS) - (1 if name == "clean" else 2), (name, picked)
        for f, img in zip(found, images, strict=True):
            assert f.image.shape == img.shape and f.image.dtype == np.uint8
            if f.char is not None:
                assert f.confidence >= shipped.picker().min_confidence
                assert f.candidates[0] == (f.char, f.confidence) and f.font
    one = shipped.restore(clean[0], char="auto")
    assert isinstance(one, AutoRestoration) and one.char == "永"
    assert isinstance(shipped.restore(clean[0], char="永"), np.ndarray)  # plain call unchanged


def test_auto_falls_back_to_no_reference_when_unsure(tiny_model) -> None:
    """When no candidate reaches min_confidence, the image is restored without a reference and
    the best candidate is still reported."""
    from restoreae.restore.api import Restorer

    r = Restorer(tiny_model, backend="torch")
    r.picker(min_confidence=1.0)  # nothing reaches certainty
    img = _scan("永", MODEL_SIZE)
    found = r.restore(img, char="auto")
    assert found.char is None and found.font is None
    assert found.confidence < 1.0
    assert 1 <= len(found.candidates) <= r.picker().k
    assert found.candidates[0][1] == found.confidence
    with pytest.warns(UserWarning, match="no character given"):  # the plain path still warns
        plain = r.restore(img, char=None)
    np.testing.assert_array_equal(found.image, plain)


def test_candidate_confidence_rule() -> None:
    """proposal ** w * read-back ** (1 - w), the proposal the larger of the damaged glyph's and
    the first restoration's probability; w = 0.5 by default (the plain geometric mean)."""
    from restoreae.restore.auto import PROPOSAL_WEIGHT, candidate_confidence

    pd = np.array([0.0, 0.0, 0.05, 0.94, 0.0, 1.0, 0.3])
    pf = np.array([0.11, 0.0, 0.07, 0.93, 0.0, 1.0, 0.0])
    rb = np.array([0.98, 1.0, 0.99, 0.82, 0.0, 1.0, 0.5])
    assert PROPOSAL_WEIGHT == 0.5
    conf = candidate_confidence(pd, pf, rb)
    np.testing.assert_allclose(conf, np.sqrt(np.maximum(pd, pf) * rb), rtol=1e-12)
    tuned = candidate_confidence(pd, pf, rb, proposal_weight=0.1)  # the validation writers' best
    expected = [0.11**0.1 * 0.98**0.9, 0, 0.07**0.1 * 0.99**0.9, 0.94**0.1 * 0.82**0.9, 0, 1, 0]
    expected[6] = 0.3**0.1 * 0.5**0.9
    np.testing.assert_allclose(tuned, expected, rtol=1e-12)
    # never proposed (a traditional twin read back through its simplified drawing): 0 either way;
    # read back best but hardly proposed (檀 over a damaged 擅): loses to the proposed one
    assert conf[1] == tuned[1] == 0.0 and conf[2] < conf[3] and tuned[2] < tuned[3]
    # read back well but proposed weakly: kept by the tuned rule, not by the default
    assert tuned[0] >= 0.45 and conf[0] < 0.5
    with pytest.raises(ValueError, match="proposal_weight"):
        candidate_confidence(pd, pf, rb, proposal_weight=1.5)
    with pytest.raises(ValueError, match="candidates"):
        candidate_confidence(np.zeros(2), np.zeros(2), np.zeros(3))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        candidate_confidence(np.array([1.5]), np.zeros(1), np.zeros(1))


class _FakeJudge:
    """A recogniser with fixed answers: ``rows[i]`` is glyph ``i``'s probability per character of
    ``alphabet`` (index 0 the CTC blank, the last a space); reading back gives ``readback[c]``."""

    alphabet = ["", "永", "a", "和", "山", " "]

    def __init__(self, rows: list[list[float]], readback: dict[str, float]) -> None:
        self.rows = np.array(rows, np.float64)
        self.readback = readback
        self.read_back: list[set[str]] = []

    def char_probabilities(self, images) -> np.ndarray:
        assert len(images) == len(self.rows)
        return self.rows

    def confidence(self, images, chars) -> np.ndarray:
        self.read_back.extend(set(c) for c in chars)
        return np.array([max(self.readback.get(c, 0.0) for c in cs) for cs in chars])


def test_auto_proposes_and_picks_by_the_rule(tiny_model) -> None:
    """Candidates are the k drawable CJK characters most probable in the damaged glyph or its first
    restoration, with both probabilities; the kept one is the most confident by
    candidate_confidence, its restoration the model's with its reference; below the threshold
    the first restoration is kept."""
    from restoreae.restore.api import Restorer
    from restoreae.restore.auto import CharPicker, candidate_confidence

    r = Restorer(tiny_model, backend="torch")
    img = _scan("永", MODEL_SIZE)
    prep = r.prepare(img, None)
    # glyph 0: the damaged one; glyph 1: its first restoration. "a" is no CJK ideograph, index 0
    # and the last are the blank and the space: never candidates
    rows = [[0.5, 0.25, 0.6, 0.2, 0.0, 0.9], [0.5, 0.0, 0.0, 0.05, 0.3, 0.9]]
    judge = _FakeJudge(rows, {"永": 0.95, "和": 0.2, "山": 0.3})
    picker = CharPicker(r, k=2, min_confidence=0.45, judge=judge)
    assert picker.propose([prep.glyph], [prep.glyph]) == [[("山", 0.0, 0.3), ("永", 0.25, 0.0)]]
    picker = CharPicker(r, k=3, min_confidence=0.45, judge=judge)
    t = picker.trials([prep])
    assert t.chars == ["山", "永", "和"] and t.image.tolist() == [0, 0, 0]
    np.testing.assert_allclose(t.p_damaged, [0.0, 0.25, 0.2])
    np.testing.assert_allclose(t.p_first, [0.3, 0.0, 0.05])
    np.testing.assert_allclose(t.readback, [0.3, 0.95, 0.2])
    assert t.restored.shape[0] == 3 and t.first.shape[0] == 1
    conf = candidate_confidence(t.p_damaged, t.p_first, t.readback)
    ((choice, y),) = picker.pick([prep])
    best = int(np.argmax(conf))
    assert choice.char == t.chars[best] == "永" and choice.confidence == pytest.approx(conf[best])
    assert [c for c, _ in choice.candidates] == ["永", "山", "和"]
    expected = r.run(r.model_input(prep, "永")[None])[0]
    np.testing.assert_allclose(y, expected, atol=1e-5)
    ((choice, _),) = CharPicker(r, 3, 0.1, judge, proposal_weight=1.0).pick([prep])
    assert choice.char == "山"  # by the proposal alone
    with pytest.raises(RestoreAEError, match="proposal_weight"):
        CharPicker(r, judge=judge, proposal_weight=-0.1)
    unsure = CharPicker(r, k=3, min_confidence=0.99, judge=judge)
    ((choice, y),) = unsure.pick([prep])
    assert choice.char is None and choice.confidence == pytest.approx(conf[best])
    np.testing.assert_allclose(y, r.run(r.model_input(prep, None, use_reference=False)[None])[0])


def test_chars_csv_accepts_auto_on_its_first_line(tmp_path) -> None:
    from restoreae.restore.command import CharMap

    path = tmp_path / "chars.csv"
    path.write_text("a.png,auto\nb.png,書\n", encoding="utf-8")
    cm = CharMap(path)
    assert cm.has_auto and cm.lookup(tmp_path / "a.png") == "auto"
    assert cm.lookup(tmp_path / "b.png") == "書"
    path.write_text("a.png,書\n", encoding="utf-8")
    assert not CharMap(path).has_auto
    path.write_text("a.png,automatic\n", encoding="utf-8")
    with pytest.raises(RestoreAEError, match="path,char"):
        CharMap(path)


def test_cli_and_web_auto(tiny_model, tmp_path) -> None:
    from fastapi.testclient import TestClient
    from PIL import Image

    from restoreae.web.app import create_app

    src = tmp_path / "yong.png"
    Image.fromarray(_scan("永", MODEL_SIZE)).save(src)
    out = tmp_path / "out"
    rc = main(["restore", str(src), "-o", str(out), "--model", str(tiny_model),
               "--backend", "torch", "--char", "auto", "--side-by-side"])  # fmt: skip
    assert rc == 0 and (out / "yong.compare.png").is_file()
    (row,) = csv.DictReader((out / "restore-results.csv").open(encoding="utf-8"))
    assert row["char_source"] == "auto" and row["candidates"] and float(row["confidence"]) >= 0
    with TestClient(create_app({"tiny": tiny_model}, backend="torch"), base_url=WEB) as client:
        job = client.post(
            "/api/restore",
            files=[("files", ("yong.png", src.read_bytes(), "image/png"))],
            data={"char": "auto", "wait": "1"},
        ).json()
    (res,) = job["results"]
    assert res["ok"] and set(res["auto"]) == {"char", "confidence", "candidates"}
    assert res["auto"]["candidates"] and res["char"] == res["auto"]["char"]


# --------------------------------------------------------------------------- corpus
def test_traditional_charset_and_corpus(tmp_path) -> None:
    from restoreae.data.charsets import GB2312_LEVEL1, charset_name, get_charset
    from restoreae.data.corpus import Corpus, build_corpus, format_summary
    from restoreae.data.fonts import load_face

    need(KAI, UKAI, NOTO_SERIF)
    full = get_charset("gb2312-1+traditional")
    assert (
        full.startswith(GB2312_LEVEL1) and len(set(full)) == len(full) == len(GB2312_LEVEL1) + 1311
    )
    assert "書" in full and "壽" in full
    assert charset_name("GB2312-1+traditional") == "gb2312-1+traditional"
    chars_file = tmp_path / "mine.txt"
    chars_file.write_text("书寿永\n㐀\n", encoding="utf-8")
    chars = get_charset(f"{chars_file}+traditional")
    assert chars == "书寿永㐀書壽"
    assert charset_name(f"{chars_file}+traditional") == "mine.txt+traditional"
    faces = [load_face(KAI), load_face(NOTO_SERIF, 2)]
    out = build_corpus(tmp_path / "c", chars, faces, 48, val_writers=0, test_writers=0,
                       heldout_chars=0, reference=KAI)  # fmt: skip
    c = Corpus.open(out)
    assert c.manifest["n_traditional"] == 2
    by_id = {w["id"]: w for w in c.writers}
    assert by_id["arphic-kaitim-gb"]["n_covered_traditional"] == 0  # GB font: no 書 壽
    assert by_id["noto-serif-cjk-sc"]["n_covered_traditional"] == 2
    ref = c.manifest["reference"]
    assert ref["fonts"]["AR PL UKai TW"] == 2 and ref["fonts"]["AR PL KaitiM GB"] == 3
    assert np.array_equal(
        c.reference[c.char_index("書")], render_glyph(load_face(UKAI, 2), "書", 48)
    )
    text = format_summary(c)
    assert "traditional" in text and "AR PL UKai TW 2" in text
