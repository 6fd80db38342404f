"""The one registry class: lookups, "did you mean", one error type, lazy built-ins; and that the
models, damage ops, style ops and loss terms all use it."""

from __future__ import annotations

import pytest

from restoreae.errors import ConfigError
from restoreae.registry import Registry, UnknownNameError


def test_registry_lookup_order_and_errors() -> None:
    reg: Registry[int] = Registry("widget")
    reg.register("blur", 1)
    reg.register("cracks", 2)
    reg.register("blur", 1)  # the same entry again (a module re-import) is fine
    with pytest.raises(ValueError, match="widget 'blur' is already registered"):
        reg.register("blur", 3)
    assert reg["cracks"] == 2 and list(reg) == ["blur", "cracks"] and len(reg) == 2
    assert "blur" in reg and "nope" not in reg and reg.get("nope") is None
    assert reg.names("c*") == ["cracks"]
    with pytest.raises(UnknownNameError) as err:
        reg["blurr"]
    msg = str(err.value)
    assert msg == "unknown widget 'blurr' (did you mean 'blur'?); known: blur, cracks"
    # One error type that old callers still catch as they did.
    assert isinstance(err.value, ConfigError | KeyError) and isinstance(err.value, ValueError)
    with pytest.raises(UnknownNameError, match=r"^cfg\.ops: unknown widget 'zzz'; known: blur"):
        reg.get_entry("zzz", where="cfg.ops")
    reg.replace("blur", 5)
    assert reg["blur"] == 5
    with pytest.raises(UnknownNameError):
        reg.replace("nope", 1)


def test_loader_runs_once_before_the_first_lookup() -> None:
    calls = []
    reg: Registry[str] = Registry("thing", loader=lambda: (calls.append(1), reg.register("a", "A")))
    reg.register("early", "E")  # registering does not load
    assert calls == []
    assert reg.names() == ["early", "a"] and reg["a"] == "A"
    assert calls == [1]


def test_every_table_is_a_registry_with_suggestions() -> None:
    from restoreae.damage.registry import DAMAGE_OPS
    from restoreae.damage.style import STYLE_OPS
    from restoreae.models.registry import MODELS, create_model
    from restoreae.train.losses import LOSSES, parse_loss_spec

    for reg in (MODELS, DAMAGE_OPS, STYLE_OPS, LOSSES):
        assert isinstance(reg, Registry) and len(reg) > 0
    with pytest.raises(ConfigError, match=r"unknown model 'unet_mobilenetv3_smal' \(did you mean"):
        create_model("unet_mobilenetv3_smal")
    with pytest.raises(ValueError, match=r"unknown loss term 'ssimm' \(did you mean 'ssim'\?\)"):
        parse_loss_spec("l1+ssimm")
    with pytest.raises(KeyError, match="did you mean 'cracks'"):
        DAMAGE_OPS["crack"]
