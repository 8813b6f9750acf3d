"""The whole model on cromwell-tiny, on CPU: forward/backward, causality, exact text path with
closed gates, EMA target, bad inputs."""

from __future__ import annotations

import pytest
import torch

from engine.config import ModelConfig, config_from_dict, load_config
from engine.model.jepa import ema_momentum
from engine.model.losses import IGNORE_INDEX
from engine.model.vljepa import VLJEPA

T = 12


@pytest.fixture(scope="module")
def cfg() -> ModelConfig:
    return load_config("cromwell-tiny").model


def make_model(cfg: ModelConfig, gates: float | None = None, seed: int = 0) -> VLJEPA:
    torch.manual_seed(seed)
    model = VLJEPA(cfg)
    if gates is not None:  # open the fusion gates, as after training
        with torch.no_grad():
            for block in model.fusion.blocks:
                for gate in (block.v2l_gate, block.l2v_gate, block.mlp_gate):
                    gate.fill_(gates)
    return model.eval()


def tokens(cfg: ModelConfig, seed: int = 1, B: int = 2) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, cfg.language.vocab_size, (B, T), generator=g)


def image(B: int = 2, H: int = 48, W: int = 40) -> torch.Tensor:
    return torch.rand(B, 3, H, W, generator=torch.Generator().manual_seed(2))


@pytest.mark.parametrize("with_image", [False, True])
def test_forward_backward(cfg: ModelConfig, with_image: bool) -> None:
    model = make_model(cfg).train()
    x = tokens(cfg)
    targets = torch.roll(x, -1, dims=1)
    targets[:, -1] = IGNORE_INDEX
    img = image() if with_image else None
    logits, losses = model(x, img, prompt_len=3 if with_image else None, targets=targets)
    assert logits.shape == (2, T, cfg.language.vocab_size)
    assert losses is not None
    assert torch.isfinite(losses.total) and losses.lm > 0 and losses.jepa > 0
    assert torch.allclose(losses.total, 0.3 * losses.jepa + 0.7 * losses.lm)
    losses.total.backward()
    grads = {n: p.grad for n, p in model.named_parameters() if p.requires_grad}
    assert not any(n.startswith("target.") for n in grads)  # the EMA target takes no gradient
    # Without an image only vision and the fusion blocks sit out (fusion.joint still feeds JEPA).
    unused = ("vision.", "fusion.blocks.", "fusion.vision_in.", "fusion.text_out.")
    for name, g in grads.items():
        if not with_image and name.startswith(unused):
            assert g is None, name
        else:
            assert g is not None and torch.isfinite(g).all(), name
    assert grads["language.embed.weight"].abs().sum() > 0
    assert grads["jepa.steps.2.down_proj.weight"].abs().sum() > 0
    gate_grads = [grads[f"fusion.blocks.{i}.l2v_gate"] for i in range(len(model.fusion.blocks))]
    if with_image:
        # Closed gates still learn: the branches behind them have a normal, non-zero init.
        assert all(g.abs().item() > 0 for g in gate_grads)
        assert grads["vision.stem.weight"].abs().sum() == 0  # nothing reaches it until gates open


def test_closed_gates_leave_the_text_path_exact(cfg: ModelConfig) -> None:
    model = make_model(cfg)
    x = tokens(cfg)
    with torch.no_grad():
        text_only, _ = model(x)
        with_image, _ = model(x, image(), prompt_len=T)
        by_hand = model.lm_head(model.ar_head(model.language(x)))
    assert torch.equal(text_only, with_image)
    assert torch.equal(text_only, by_hand)
    # And the comparison can fail: with open gates the image changes the logits.
    opened = make_model(cfg, gates=0.5)
    with torch.no_grad():
        assert not torch.allclose(opened(x)[0], opened(x, image(), prompt_len=T)[0])


@pytest.mark.parametrize(("with_image", "prompt_len"), [(False, 0), (True, 0), (True, 5)])
def test_changing_a_later_token_never_changes_earlier_logits(
        cfg: ModelConfig, with_image: bool, prompt_len: int) -> None:
    model = make_model(cfg, gates=0.5)
    img = image() if with_image else None
    x = tokens(cfg)
    with torch.no_grad():
        base, _ = model(x, img, prompt_len=prompt_len)
        for j in range(prompt_len, T):
            changed = x.clone()
            changed[:, j] = (changed[:, j] + 1 + j) % cfg.language.vocab_size
            logits, _ = model(changed, img, prompt_len=prompt_len)
            assert torch.allclose(logits[:, :j], base[:, :j], atol=1e-6), f"position {j}"
            assert not torch.allclose(logits[:, j:], base[:, j:])


def test_jepa_predictions_are_causal(cfg: ModelConfig) -> None:
    model = make_model(cfg)
    z = torch.randn(1, T, cfg.fusion.joint_dim)
    with torch.no_grad():
        base = model.jepa(z)
        z2 = z.clone()
        z2[:, 7] += 1.0
        pred = model.jepa(z2)
    assert base.shape == (1, T, cfg.jepa.prediction_steps, cfg.jepa.hidden_dim)
    assert torch.allclose(pred[:, :7], base[:, :7], atol=1e-6)
    assert not torch.allclose(pred[:, 7:], base[:, 7:])


def test_prompt_targets_are_not_scored_with_an_image(cfg: ModelConfig) -> None:
    """Positions before prompt_len - 1 predict prompt tokens that the vision stream has read."""
    model = make_model(cfg, gates=0.5)
    x, img, p = tokens(cfg), image(), 6
    targets = torch.roll(x, -1, dims=1)
    other = targets.clone()
    other[:, : p - 1] = (other[:, : p - 1] + 1) % cfg.language.vocab_size
    with torch.no_grad():
        a = model(x, img, prompt_len=p, targets=targets)[1]
        b = model(x, img, prompt_len=p, targets=other)[1]
        c = model(x, img, prompt_len=0, targets=other)[1]
    assert a is not None and b is not None and c is not None
    assert torch.equal(a.lm, b.lm) and not torch.equal(b.lm, c.lm)


def test_per_row_prompt_lengths(cfg: ModelConfig) -> None:
    """A (B,) prompt_len is the same as running each row with its own int prompt_len."""
    model = make_model(cfg, gates=0.5)
    x, img = tokens(cfg), image()
    with torch.no_grad():
        both, _ = model(x, img, prompt_len=torch.tensor([0, 7]))
        row0, _ = model(x[:1], img[:1], prompt_len=0)
        row1, _ = model(x[1:], img[1:], prompt_len=7)
    assert torch.allclose(both[0], row0[0], atol=1e-5)
    assert torch.allclose(both[1], row1[0], atol=1e-5)


def test_ema_update_arithmetic(cfg: ModelConfig) -> None:
    model = make_model(cfg)
    assert model.target is not None
    online = dict(model.named_parameters())
    with torch.no_grad():  # move the online weights away from the target copy
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    before = {n: p.clone() for n, p in model.target.named_parameters()}
    model.update_ema(0.9)
    for name, p in model.target.named_parameters():
        expected = 0.9 * before[name] + 0.1 * online[name]
        assert torch.allclose(p, expected, atol=1e-6), name
    model.update_ema(1.0)  # momentum 1 keeps the target as it is
    for name, p in model.target.named_parameters():
        assert torch.allclose(p, 0.9 * before[name] + 0.1 * online[name], atol=1e-6)
    model.update_ema(0.0)  # momentum 0 copies the online weights
    assert all(torch.equal(p, online[n]) for n, p in model.target.named_parameters())
    with pytest.raises(ValueError, match="momentum"):
        model.update_ema(1.5)


def test_ema_momentum_schedule() -> None:
    assert ema_momentum(0, 100, 0.996, 1.0) == 0.996
    assert ema_momentum(50, 100, 0.996, 1.0) == pytest.approx(0.998)
    assert ema_momentum(100, 100, 0.996, 1.0) == 1.0
    assert ema_momentum(500, 100, 0.996, 1.0) == 1.0
    with pytest.raises(ValueError):
        ema_momentum(1, 0, 0.996, 1.0)


def test_fusion_gates_start_closed_and_branches_do_not(cfg: ModelConfig) -> None:
    model = make_model(cfg)
    for block in model.fusion.blocks:
        assert block.v2l_gate.item() == block.l2v_gate.item() == block.mlp_gate.item() == 0.0
        assert block.l2v.o_proj.weight.std() > 0.01 and block.mlp.down_proj.weight.std() > 0.01


def test_tied_embeddings_share_one_tensor() -> None:
    cfg = config_from_dict({"model": {**_tiny_dict(), "tie_word_embeddings": True}}).model
    model = VLJEPA(cfg, ema_target=False)
    assert model.lm_head.weight is model.language.embed.weight


def _tiny_dict() -> dict:
    import yaml

    from engine.config import CONFIG_DIR

    return yaml.safe_load((CONFIG_DIR / "cromwell-tiny.yaml").read_text())["model"]


@pytest.mark.parametrize(
    ("img", "words"),
    [
        (torch.rand(1, 3, 30, 32), "multiples of 8"),
        (torch.rand(1, 1, 32, 32), r"\(B, 3, H, W\)"),
        (torch.randint(0, 255, (1, 3, 32, 32)), "float"),
    ],
)
def test_bad_images_are_rejected(cfg: ModelConfig, img: torch.Tensor, words: str) -> None:
    model = make_model(cfg)
    with pytest.raises(ValueError, match=words):
        model.encode_image(img)


def test_encode_image_gives_one_token_per_8x8_pixels(cfg: ModelConfig) -> None:
    model = make_model(cfg)
    with torch.no_grad():
        v = model.encode_image(image(B=1, H=48, W=40))  # grid 6x5, padded to 8x8 windows
    assert v.shape == (1, 6 * 5, cfg.vision.vision_hidden_dim)


def test_bad_prompt_len_and_overlong_input(cfg: ModelConfig) -> None:
    model = make_model(cfg)
    with pytest.raises(ValueError, match="prompt_len"):
        model(tokens(cfg), image(), prompt_len=T + 1)
    with pytest.raises(ValueError, match="prompt_len"):
        model(tokens(cfg), image(), prompt_len=torch.tensor([1, 2, 3]))
    with pytest.raises(ValueError, match="integer ids"):
        model(torch.zeros(2, T))
    with pytest.raises(ValueError, match="batch"):
        model(tokens(cfg), image(B=3))
    too_long = torch.zeros(1, cfg.language.max_position_embeddings + 1, dtype=torch.long)
    with pytest.raises(ValueError, match="max_position_embeddings"):
        model(too_long)
