"""The four training stages, and exactly which parameters each one trains.

DESIGN decision 5: the LM loss is never switched off while the generating weights (language
encoder, AR head, LM head) train; stage 1 ("JEPA pre-training") trains only the new modules
(vision, fusion, JEPA) with the language path frozen, so it cannot collapse the text output.

| stage | name          | trains                     | loss    | code data mix            | shots  |
|-------|---------------|----------------------------|---------|--------------------------|--------|
| 1     | jepa-pretrain | vision, fusion, jepa       | config  | text                     | 1 in 2 |
| 2     | lm-finetune   | language, ar_head, lm_head | LM only | text .7, fim .3          | none   |
| 3     | joint         | all six                    | config  | text .4, fim .2, edit .4 | 1 in 4 |
| 4     | instruct      | all six                    | config  | edit .8, fim .2          | 1 in 4 |

(config: the config's weights, 0.3 JEPA + 0.7 LM; LM only: 0 JEPA + 1 LM; shots: batches of
rendered code screenshots among the text batches.)

(all six: vision, language, fusion, jepa, ar_head, lm_head.)

Stage 1 still computes the LM loss: its gradient reaches fusion (the gated branches) through
the frozen AR head, which is how the vision path learns to help the text. Stage 2 turns JEPA
off because nothing that JEPA alone would train is trainable there. Stage 4 differs from 3 in
its data (instruction/edit examples whose targets score only the answer), not its parameters.
The EMA target (`target.`) never takes a gradient in any stage.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

COMPONENTS = ("vision", "language", "fusion", "jepa", "ar_head", "lm_head")


@dataclass(frozen=True)
class Stage:
    number: int
    name: str
    trains: tuple[str, ...]  # top-level modules of VLJEPA whose parameters take gradients
    jepa_weight: float | None  # None: the config's weight
    lm_weight: float | None
    data_mix: tuple[tuple[str, float], ...]  # task weights for engine.data.pipeline.mixed_stream
    vision_every: int  # every n-th batch is code screenshots (0: none)
    description: str


STAGES: dict[int, Stage] = {
    1: Stage(1, "jepa-pretrain", ("vision", "fusion", "jepa"), None, None,
             (("text", 1.0),), 2,
             "JEPA pre-training of the new modules, language path frozen"),
    2: Stage(2, "lm-finetune", ("language", "ar_head", "lm_head"), 0.0, 1.0,
             (("text", 0.7), ("fim", 0.3)), 0,
             "LM fine-tuning of the language path"),
    3: Stage(3, "joint", COMPONENTS, None, None,
             (("text", 0.4), ("fim", 0.2), ("edit", 0.4)), 4,
             "joint training of every module"),
    4: Stage(4, "instruct", COMPONENTS, None, None, (("edit", 0.8), ("fim", 0.2)), 4,
             "instruction fine-tuning on code edits"),
}


def get_stage(number: int) -> Stage:
    if number not in STAGES:
        raise ValueError(f"stage must be one of {', '.join(map(str, STAGES))}, got {number}")
    return STAGES[number]


def apply_stage(model: nn.Module, stage: Stage) -> list[str]:
    """Set `requires_grad` on every parameter of `model` (a VLJEPA) for `stage`; returns the
    names of the trainable ones. With tied embeddings the LM head and the token embedding are
    one tensor, listed once as `language.embed.weight`: it trains when either owner does."""
    trains = set(stage.trains)
    tied = getattr(model, "cfg", None) is not None and model.cfg.tie_word_embeddings
    names = []
    for name, p in model.named_parameters():
        top = name.split(".", 1)[0]
        on = top in trains
        if tied and name == "language.embed.weight":
            on = bool(trains & {"language", "lm_head"})
        p.requires_grad_(on and top != "target")
        if p.requires_grad:
            names.append(name)
    return names


def loss_weights(stage: Stage, jepa_weight: float, lm_weight: float) -> tuple[float, float]:
    """(jepa, lm) weights for `stage`, falling back to the config's."""
    return (jepa_weight if stage.jepa_weight is None else stage.jepa_weight,
            lm_weight if stage.lm_weight is None else stage.lm_weight)
