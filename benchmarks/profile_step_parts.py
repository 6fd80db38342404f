"""Where one training step's time goes, part by part, on any device (CPU or CUDA): each style op
and each damage op alone on a whole batch, the full style and damage of a config, and the model's
forward + loss + backward + AdamW step (with bf16 autocast on CUDA).

Every part runs ``--warmup`` times, then ``--repeats`` timed times with the device synchronised
around it; the median wall time per batch is printed in ms and as images/s. Glyphs are training
glyphs of ``--corpus``, resized to ``--size`` as the trainer does.

    python benchmarks/profile_step_parts.py --device cuda --batch 128 --size 128 \
        --models nafnet_base,nafnet_small --damage real --style calligraphy

Prints only (docs/PERFORMANCE.md quotes a run by hand).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np
import torch

from restoreae.damage.pipeline import DamageConfig
from restoreae.damage.style import STYLE_OPS, StyleConfig, build_style
from restoreae.damage.torch_ops import TorchDamage
from restoreae.data.corpus import Corpus
from restoreae.models import create_model
from restoreae.train.batches import to_float
from restoreae.train.losses import build_loss, composite_mask_loss


def glyphs(n: int, size: int, corpus: str, device: torch.device) -> torch.Tensor:
    """``n`` training glyphs of ``corpus`` as float ``(n, 1, size, size)`` in [0, 1] on ``device``,
    white ink on black, made as the trainer makes them (:func:`restoreae.train.batches.to_float`)."""
    c = Corpus.open(corpus)
    w, ch = c.pairs("train")
    pick = np.random.default_rng(0).choice(len(w), n, replace=False)
    arr = np.stack([c.glyphs[w[i], ch[i]] for i in pick])
    return to_float(torch.from_numpy(arr), device, size)


def timed(fn: Callable[[], object], device: torch.device, warmup: int, repeats: int) -> float:
    """Median seconds of ``fn()`` with the device synchronised before and after."""
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        sync()
        t = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def train_step(
    model: torch.nn.Module,
    opt: torch.optim.Optimizer,
    inp: torch.Tensor,
    target: torch.Tensor,
    loss_fn,
    amp,
) -> None:
    """One composite training step (mask weight 0.5, as the faithful recipes)."""
    with torch.autocast(inp.device.type, dtype=amp, enabled=amp is not None):
        parts = model(inp)
    loss = composite_mask_loss(parts, inp, target, loss_fn, 0.5)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--models", default="nafnet_small")
    ap.add_argument("--damage", default="real")
    ap.add_argument("--style", default="calligraphy")
    ap.add_argument("--corpus", default="data/corpus128", help="a built corpus")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=5)
    a = ap.parse_args()
    dev = torch.device(a.device)
    torch.backends.cudnn.benchmark = dev.type == "cuda"
    x = glyphs(a.batch, a.size, a.corpus, dev)
    gen = torch.Generator(device=dev)
    gen.manual_seed(0)
    rows: list[tuple[str, float]] = []

    def part(label: str, fn: Callable[..., object], *args: object, **kwargs: object) -> None:
        rows.append((label, timed(lambda: fn(*args, **kwargs), dev, a.warmup, a.repeats)))

    damage = TorchDamage(DamageConfig.resolve(a.damage))
    style_cfg = StyleConfig.resolve(a.style)
    for name in style_cfg.ops if style_cfg else []:
        settings = {k: v for k, v in style_cfg.ops[name].items() if k != "p"}
        part(f"style op {name}", STYLE_OPS[name].fn, x, gen, **settings)
    for name in damage.ops:
        part(f"damage op {name}", damage.apply_op, name, x, gen)
    style = build_style(a.style)
    if style is not None:
        part(f"style {a.style} (as trained)", style, x, gen)
    part(f"damage {a.damage} (as trained)", damage, x, gen)

    loss_fn = build_loss("l1+0.2*ssim")
    inp = torch.cat([damage(x, gen), x], 1).contiguous(memory_format=torch.channels_last)
    amp = torch.bfloat16 if dev.type == "cuda" else None
    for m in a.models.split(","):
        model = create_model(m, in_chans=2, img_size=a.size, output="composite").to(dev)
        model = model.to(memory_format=torch.channels_last)
        model.return_parts = True  # (content, mask) as in training (restoreae.train.setup)
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
        part(f"model {m}: fwd+loss+bwd+AdamW", train_step, model, opt, inp, x, loss_fn, amp)

    print(
        f"device {dev} ({torch.cuda.get_device_name(dev) if dev.type == 'cuda' else 'cpu'}), "
        f"batch {a.batch}, {a.size} px, torch {torch.__version__}"
    )
    print("| part | ms / batch | img/s |\n|---|---:|---:|")
    for name, s in rows:
        print(f"| {name} | {s * 1000:.1f} | {a.batch / s:.0f} |")


if __name__ == "__main__":
    main()
