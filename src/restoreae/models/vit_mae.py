"""ViT / MAE-style autoencoder: 12-layer ViT encoder, light 4-layer transformer decoder, patch 16.

``(B, in_chans, H, W)`` in [0, 1] → padded to a multiple of 16 → 16×16 patches embedded by a
strided conv → + learned positional embedding (stored for the ``img_size // 16`` grid and
bilinearly interpolated to other grids) → encoder blocks → linear to the decoder width → + mask
tokens (MAE) → decoder positional embedding → decoder blocks → per-patch pixel head (256 logits)
→ un-patchify to ``(B, 1, H, W)`` → sigmoid (in :class:`RestoreNet`).

MAE pre-training: set ``model.mask_ratio`` (kwarg or attribute) > 0; in train mode a random
``mask_ratio`` fraction of patches is dropped before the encoder (drawn with
``model.mask_generator``, a ``torch.Generator`` or None). The masked patches are rebuilt from mask
tokens and the training loss covers every pixel (restoration wants the whole glyph back, not only
MAE's masked patches); ``model.last_mask`` ((B, N) float, 1 = masked, row-major over the padded
patch grid; None when nothing was masked) records the last draw for inspection. In eval mode no
patch is masked.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from timm.layers import trunc_normal_
from timm.models.vision_transformer import Block
from torch import nn

from restoreae.models.blocks import RestoreNet
from restoreae.models.registry import register_model, signature_options


def _resize_pos(pos: torch.Tensor, grid: int, gh: int, gw: int) -> torch.Tensor:
    """(1, grid*grid, D) positional table → (1, gh*gw, D), bilinear when the grid differs."""
    if (gh, gw) == (grid, grid):
        return pos
    d = pos.shape[-1]
    p = pos.reshape(1, grid, grid, d).permute(0, 3, 1, 2)
    p = F.interpolate(p, size=(gh, gw), mode="bilinear", align_corners=False)
    return p.permute(0, 2, 3, 1).reshape(1, gh * gw, d)


class ViTMAE(RestoreNet):
    """ViT encoder + light transformer decoder with a pixel head (see module docstring)."""

    def __init__(
        self,
        in_chans: int = 2,
        img_size: int = 224,
        patch_size: int = 16,
        embed_dim: int = 192,
        depth: int = 12,
        num_heads: int = 3,
        decoder_dim: int = 128,
        decoder_depth: int = 4,
        decoder_heads: int = 4,
        mlp_ratio: float = 4.0,
        mask_ratio: float = 0.0,
        residual: bool = False,
        pad_mode: str = "zeros",
        drop_path_rate: float = 0.0,
    ) -> None:
        super().__init__(in_chans, stride=patch_size, pad_mode=pad_mode, residual=residual)
        if not 0.0 <= mask_ratio < 1.0:
            raise ValueError(f"mask_ratio must be in [0, 1), got {mask_ratio}")
        self.patch_size = patch_size
        self.grid = max(1, img_size // patch_size)
        self.mask_ratio = mask_ratio
        self.mask_generator: torch.Generator | None = None
        self.last_mask: torch.Tensor | None = None

        self.patch_embed = nn.Conv2d(in_chans, embed_dim, patch_size, stride=patch_size)
        self.pos_embed = nn.Parameter(torch.zeros(1, self.grid * self.grid, embed_dim))
        dpr = torch.linspace(0, drop_path_rate, depth).tolist()
        self.blocks = nn.Sequential(
            *[
                Block(
                    dim=embed_dim,
                    num_heads=num_heads,
                    mlp_ratio=mlp_ratio,
                    qkv_bias=True,
                    drop_path=dpr[i],
                )
                for i in range(depth)
            ]
        )
        self.norm = nn.LayerNorm(embed_dim, eps=1e-6)
        self.decoder_embed = nn.Linear(embed_dim, decoder_dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, decoder_dim))
        self.decoder_pos_embed = nn.Parameter(torch.zeros(1, self.grid * self.grid, decoder_dim))
        self.decoder_blocks = nn.Sequential(
            *[
                Block(dim=decoder_dim, num_heads=decoder_heads, mlp_ratio=mlp_ratio, qkv_bias=True)
                for _ in range(decoder_depth)
            ]
        )
        self.decoder_norm = nn.LayerNorm(decoder_dim, eps=1e-6)
        self.pred = nn.Linear(decoder_dim, patch_size * patch_size)
        self._init_weights()

    def _init_weights(self) -> None:
        trunc_normal_(self.pos_embed, std=0.02)
        trunc_normal_(self.decoder_pos_embed, std=0.02)
        trunc_normal_(self.mask_token, std=0.02)
        w = self.patch_embed.weight
        nn.init.xavier_uniform_(w.view(w.shape[0], -1))
        for m in self.modules():
            if isinstance(m, nn.Linear):
                trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        nn.init.normal_(self.pred.weight, std=1e-3)

    def _random_mask(self, b: int, n: int, device: torch.device) -> tuple[torch.Tensor, ...]:
        keep = max(1, int(round(n * (1.0 - self.mask_ratio))))
        gen = self.mask_generator
        if gen is not None and gen.device != device:
            noise = torch.rand(b, n, generator=gen, device=gen.device).to(device)
        else:
            noise = torch.rand(b, n, generator=gen, device=device)
        shuffle = noise.argsort(dim=1)
        restore = shuffle.argsort(dim=1)
        ids_keep = shuffle[:, :keep]
        mask = torch.ones(b, n, device=device)
        mask[:, :keep] = 0
        mask = torch.gather(mask, 1, restore)
        return ids_keep, restore, mask

    def forward_logits(self, x: torch.Tensor) -> torch.Tensor:
        p = self.patch_size
        hp, wp = int(x.shape[-2]) // p, int(x.shape[-1]) // p
        t = self.patch_embed(x).flatten(2).transpose(1, 2)  # (B, N, D)
        t = t + _resize_pos(self.pos_embed, self.grid, hp, wp).to(t.dtype)
        b, n, d = t.shape
        masking = self.training and self.mask_ratio > 0
        if masking:
            ids_keep, restore, mask = self._random_mask(b, n, t.device)
            t = torch.gather(t, 1, ids_keep.unsqueeze(-1).expand(-1, -1, d))
            self.last_mask = mask
        else:
            self.last_mask = None
        t = self.norm(self.blocks(t))
        t = self.decoder_embed(t)
        if masking:
            dd = t.shape[-1]
            fill = self.mask_token.to(t.dtype).expand(b, n - t.shape[1], dd)
            t = torch.cat([t, fill], dim=1)
            t = torch.gather(t, 1, restore.unsqueeze(-1).expand(-1, -1, dd))
        elif self.training:
            # keep mask_token in the graph so DDP (find_unused_parameters=False) is happy
            t = t + 0.0 * self.mask_token.to(t.dtype).sum()
        t = t + _resize_pos(self.decoder_pos_embed, self.grid, hp, wp).to(t.dtype)
        t = self.pred(self.decoder_norm(self.decoder_blocks(t)))  # (B, N, p*p)
        t = t.reshape(-1, hp, wp, p, p).permute(0, 1, 3, 2, 4)
        return t.reshape(-1, 1, hp * p, wp * p)


@register_model(kind="vit", options=signature_options(ViTMAE))
def vit_mae(**kwargs: Any) -> ViTMAE:
    """ViT encoder (12 layers, width 192) + 4-layer light transformer decoder, patch 16, MAE mask."""
    return ViTMAE(**kwargs)
