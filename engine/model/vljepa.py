"""Cromwell VL-JEPA, whole: vision encoder -> fusion <- language encoder; JEPA head on the
joint embeddings; AR head and LM head on the fused language stream.

    tokens (B, T) -> language -> h (B, T, d_lang)
    image (B, 3, H, W) -> vision -> (B, N, d_vis)
    fusion(h, vision, prompt_len) -> h' (B, T, d_lang), z (B, T, joint)
    h' -> ar_head -> lm_head -> logits (B, T, vocab)
    z -> jepa -> predictions of z_{t+1..t+k} (B, T, k, joint)

With no image, fusion is skipped: h' = h and z = fusion.joint(h). The runtime mirrors the
pieces one by one (`encode_image`, `language`, `fusion`, `ar_head`, `lm_head`).
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from engine.config import ModelConfig
from engine.model.ar_head import ARHead
from engine.model.fusion import Fusion
from engine.model.jepa import JEPAPredictor, ema_update
from engine.model.language import LanguageEncoder
from engine.model.layers import init_weights
from engine.model.losses import IGNORE_INDEX, Losses, hybrid_loss, jepa_loss, lm_loss
from engine.model.vision import VisionEncoder

# The modules whose EMA copy produces the JEPA targets.
CONTEXT_PATH = ("vision", "language", "fusion")


def encode(vision: VisionEncoder, language: LanguageEncoder, fusion: Fusion,
           tokens: torch.Tensor, image: torch.Tensor | None, prompt_len: torch.Tensor
           ) -> tuple[torch.Tensor, torch.Tensor]:
    """The context path: -> (language stream for the AR head, joint embeddings)."""
    h = language(tokens)  # (B, T, d_lang)
    if image is None:
        return h, fusion.joint(h)
    return fusion(h, vision(image), prompt_len)


class VLJEPA(nn.Module):
    def __init__(self, cfg: ModelConfig, ema_target: bool = True) -> None:
        """`ema_target=False` leaves out the EMA copy (inference, parameter counts); the JEPA
        loss then cannot be computed. The copy is made at init and takes no gradient: after
        loading weights, `update_ema(0.0)` copies them into it; an optimiser takes the
        parameters with `requires_grad`, and an exporter skips the `target.` keys."""
        super().__init__()
        self.cfg = cfg
        self.vision = VisionEncoder(cfg)
        self.language = LanguageEncoder(cfg)
        self.fusion = Fusion(cfg)
        self.jepa = JEPAPredictor(cfg)
        self.ar_head = ARHead(cfg)
        self.lm_head = nn.Linear(cfg.autoregressive.hidden_size, cfg.language.vocab_size,
                                 bias=False)
        init_weights(self, cfg.initializer_range)
        if cfg.tie_word_embeddings:
            self.lm_head.weight = self.language.embed.weight
        self.target: nn.ModuleDict | None = None
        if ema_target:
            self.target = nn.ModuleDict({n: copy.deepcopy(getattr(self, n)) for n in CONTEXT_PATH})
            self.target.requires_grad_(False)

    def encode_image(self, image: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) floats in [0, 1], H and W multiples of 8 -> (B, H/8 * W/8, d_vis)."""
        return self.vision(image)

    def forward(self, tokens: torch.Tensor, image: torch.Tensor | None = None,
                prompt_len: int | torch.Tensor | None = None,
                targets: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, Losses | None]:
        """tokens (B, T); image (B, 3, H, W) or None; prompt_len: text positions the vision
        stream may read (int or (B,), default 0; see fusion.py for the causality rule);
        targets (B, T) next tokens with IGNORE_INDEX holes -> (logits (B, T, V), losses)."""
        prompt = self._prompt_len(tokens, prompt_len)  # (B,)
        if image is not None and image.shape[0] != tokens.shape[0]:
            raise ValueError(f"image batch {image.shape[0]} != token batch {tokens.shape[0]}")
        h, z = encode(self.vision, self.language, self.fusion, tokens, image, prompt)
        logits = self.lm_head(self.ar_head(h))  # (B, T, V)
        if targets is None:
            return logits, None
        return logits, self._losses(logits, z, tokens, image, prompt, targets)

    def _losses(self, logits: torch.Tensor, z: torch.Tensor, tokens: torch.Tensor,
                image: torch.Tensor | None, prompt: torch.Tensor, targets: torch.Tensor
                ) -> Losses:
        if self.target is None:
            raise RuntimeError("this model was built with ema_target=False: no JEPA loss")
        if targets.shape != tokens.shape:
            raise ValueError(f"targets {tuple(targets.shape)} must match tokens "
                             f"{tuple(tokens.shape)}")
        if image is not None:
            # Positions before prompt_len - 1 predict prompt tokens the vision stream has read.
            pos = torch.arange(tokens.shape[1], device=tokens.device)
            targets = targets.masked_fill(pos[None, :] < prompt[:, None] - 1, IGNORE_INDEX)
        with torch.no_grad():
            t = self.target
            _, z_target = encode(t.vision, t.language, t.fusion, tokens, image, prompt)
        jepa = jepa_loss(self.jepa(z), z_target, targets != IGNORE_INDEX)
        lc = self.cfg.loss
        return hybrid_loss(lm_loss(logits, targets), jepa, lc.jepa_weight, lc.lm_weight)

    def _prompt_len(self, tokens: torch.Tensor, prompt_len: int | torch.Tensor | None
                    ) -> torch.Tensor:
        if tokens.dim() != 2 or tokens.is_floating_point():
            raise ValueError(f"tokens must be integer ids (B, T), got {tuple(tokens.shape)} "
                             f"{tokens.dtype}")
        B, T = tokens.shape
        if prompt_len is None:
            prompt_len = 0
        p = torch.as_tensor(prompt_len, dtype=torch.long, device=tokens.device)
        p = p.expand(B) if p.dim() == 0 else p
        if p.shape != (B,) or bool(((p < 0) | (p > T)).any()):
            raise ValueError(f"prompt_len must be an int or a ({B},) tensor in [0, {T}], "
                             f"got {prompt_len!r}")
        return p

    @torch.no_grad()
    def update_ema(self, momentum: float) -> None:
        """EMA step of the target context path: target <- m * target + (1 - m) * online."""
        if self.target is None:
            raise RuntimeError("this model was built with ema_target=False: no EMA target")
        for name in CONTEXT_PATH:
            ema_update(self.target[name], getattr(self, name), momentum)
