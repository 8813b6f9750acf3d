"""A loaded model: the decoder, its tokenizer and chat template, and the text API the
language server and the command line use (`stream`, `generate`) with token-level variants."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from engine import _native as K
from engine.config import ModelConfig
from engine.runtime.cromwell_weights import VisionWeights
from engine.runtime.decoder import PREFILL_CHUNK, Decoder
from engine.runtime.decoder_weights import TUNED_PREFIX, tuned_tasks
from engine.runtime.fusion import Fusion
from engine.runtime.generate import decode_n_tokens, stream_text
from engine.runtime.gguf_file import GGUFFile
from engine.runtime.sampler import Sampler, SamplingParams
from engine.runtime.token_healing import SpellingConstraint
from engine.runtime.vision_encoder import VisionEncoder
from engine.tokenizer import CodeTokenizer

if TYPE_CHECKING:
    import PIL.Image

    from engine.runtime.fim_format import FimFormat

# Tokens that end a chat turn in the common templates; whichever the vocabulary has stop
# generation, alongside the ids the file declares (eos, eot, eom).
END_OF_TURN_TOKENS = ("<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<|end|>", "<end_of_turn>")
STOP_ID_KEYS = (
    "tokenizer.ggml.eos_token_id",
    "tokenizer.ggml.eot_token_id",
    "tokenizer.ggml.eom_token_id",
)


def stop_token_ids(f: GGUFFile, tokenizer: CodeTokenizer) -> frozenset[int]:
    ids = {int(f.metadata[k]) for k in STOP_ID_KEYS if k in f.metadata}
    # Through the tokenizer, not the file's token list: that list is decoded lazily, and a
    # load should not decode 49k strings to look up five.
    ids.update(i for t in END_OF_TURN_TOKENS if (i := tokenizer.token_to_id(t)) is not None)
    return frozenset(ids)


class Model:
    """One model, one KV cache. Generations do not overlap: starting one ends any stream
    still open (it stops at its next token), so the newest request always gets the cache."""

    def __init__(
        self,
        f: GGUFFile,
        tokenizer: CodeTokenizer,
        n_ctx: int | None = None,
        kv_cache: str = "f16",
    ) -> None:
        self.file = f
        self.decoder = Decoder(f, n_ctx, kv_cache=kv_cache)
        # A file may carry a fine-tune's matrices beside the base's (`tuned.*`) for the tasks
        # it names (TUNED_TASKS_KEY): those requests run on a second decoder over them, with
        # its own KV cache, built on the first such request.
        self._decoder_args = (n_ctx, kv_cache)
        self.tuned_tasks = tuned_tasks(f)
        self._tuned: Decoder | None = None
        self.tokenizer = tokenizer
        self.stop_ids = stop_token_ids(f, tokenizer) | tokenizer.eog_ids
        self._lock = threading.Lock()
        self._generation = 0  # which stream owns the KV cache
        # A `cromwell` file also holds a vision encoder and fusion (cromwell_weights.py).
        self._vision_encoder: VisionEncoder | None = None
        self._vision_weights: tuple[VisionWeights, ModelConfig] | None = None
        self.config: ModelConfig | None = None
        self.trained_parts: tuple[str, ...] = ()
        self.fusion: Fusion | None = None
        self._encoded: tuple[object, np.ndarray] | None = None  # (image key, vision tokens)
        self._fim: FimFormat | None = None
        if f.architecture == "cromwell":
            self._load_vision()

    def decoder_for(self, task: str | None = None) -> Decoder:
        """The decoder a request of `task` ("infill", "edit", or None for any other) runs on:
        the tuned one when the file has tuned weights for that task, else the base."""
        if task is None or task not in self.tuned_tasks:
            return self.decoder
        if self._tuned is None:
            n_ctx, kv_cache = self._decoder_args
            self._tuned = Decoder(self.file, n_ctx, kv_cache=kv_cache, variant=TUNED_PREFIX)
        return self._tuned

    def _load_vision(self) -> None:
        from engine.runtime.cromwell_weights import load_cromwell_weights

        cw = load_cromwell_weights(self.file)
        self.config = cw.cfg
        self.trained_parts = cw.trained_parts
        # The encoder (its bias tables gathered per block) is built on the first image: a
        # text request, the common one, never needs it.
        self._vision_weights = (cw.vision, cw.cfg)
        self.fusion = Fusion(cw.fusion, cw.cfg.fusion.num_attention_heads, cw.cfg.epsilon)
        self.decoder.fusion_at = cw.fusion_at

    @property
    def vision_encoder(self) -> VisionEncoder | None:
        if self._vision_encoder is None and self._vision_weights is not None:
            self._vision_encoder = VisionEncoder(*self._vision_weights)
        return self._vision_encoder

    @property
    def takes_images(self) -> bool:
        return self._vision_weights is not None

    def encode_image(self, image: str | Path | np.ndarray | PIL.Image.Image) -> np.ndarray:
        """An image file, a PIL image or an (H, W, 3) array in [0, 1] -> vision tokens
        (N, d_vis). The last file encoded is remembered (by path, size and mtime), so asking
        about the same screenshot again does not encode it again."""
        from engine.runtime.image_input import image_array, load_image

        encoder = self.vision_encoder
        if encoder is None:
            raise ValueError(
                f"{self.path} is a text-only {self.architecture!r} model: it cannot take an image"
            )
        if isinstance(image, np.ndarray):
            return encoder(image)
        if hasattr(image, "convert") and hasattr(image, "size"):  # a PIL image
            return encoder(image_array(image))
        if not isinstance(image, str | Path):
            raise TypeError(
                "image: expected a file path, a PIL image or an (H, W, 3) float array, "
                f"got {type(image).__name__}"
            )
        p = Path(image)
        try:
            st = p.stat()
        except OSError as err:
            raise ValueError(f"{p}: cannot read the image: {err}") from None
        key = (str(p.resolve()), st.st_size, st.st_mtime_ns)
        if self._encoded is None or self._encoded[0] != key:
            self._encoded = (key, encoder(load_image(p)))
        return self._encoded[1]

    @property
    def path(self) -> Path:
        return self.file.path

    @property
    def n_ctx(self) -> int:
        return self.decoder.n_ctx

    @property
    def architecture(self) -> str:
        return self.decoder.cfg.arch

    @property
    def fim(self) -> FimFormat:
        """The model's own fill-in-the-middle format, read from its file (fim_format.py);
        family "none" when it has none (prefix-only completion)."""
        if self._fim is None:
            # Imported here: only completion asks, and a load should not build its tables.
            from engine.runtime.fim_format import detect_fim

            self._fim = detect_fim(self.file.metadata, self.tokenizer)
        return self._fim

    def fim_format(self, override: str | None = None) -> FimFormat:
        """`fim`, or the format a user setting names (a family, "none"; None or "auto":
        detect). A name the vocabulary cannot serve is a ValueError saying which are valid."""
        if override is None or override == "auto":
            return self.fim
        from engine.runtime.fim_format import detect_fim

        return detect_fim(self.file.metadata, self.tokenizer, override)

    def apply_chat_template(
        self, messages: list[dict[str, str]], add_generation_prompt: bool = True
    ) -> str:
        """Render `messages` with the chat template stored in the GGUF file."""
        return self.tokenizer.apply_chat_template(
            messages, add_generation_prompt=add_generation_prompt
        )

    # --- token level ---------------------------------------------------------------------------

    def stream_tokens(
        self,
        ids: Sequence[int],
        *,
        max_tokens: int,
        temperature: float = 0.0,
        top_k: int = 0,
        top_p: float = 1.0,
        repetition_penalty: float = 1.0,
        seed: int | None = None,
        stop_ids: Sequence[int] | None = None,
        cancel: threading.Event | None = None,
        speculative: bool = True,
        image: str | Path | np.ndarray | PIL.Image.Image | None = None,
        reuse_min: int | None = None,
        task: str | None = None,
        spell: str = "",
    ) -> Iterator[int]:
        """`image` (a `cromwell` model only): a file or an (H, W, 3) array in [0, 1]; it is
        encoded once and fused with the prompt (see fusion.py). `reuse_min`: keep cached
        runs of at least that many tokens after a change in the prompt (generate.prefill);
        None keeps to the exact common prefix. A `cancel` set during the prefill ends the
        stream with no token, the prompt's computed part kept in the cache. `task`: what
        the request is for ("infill", "edit"), which picks the decoder (`decoder_for`); a
        request with an image runs on the base, the one fusion is wired into. `spell`: text
        the answer must start with, in whatever tokens the model prefers (token healing:
        engine/runtime/token_healing.py); its tokens are part of the stream, beyond
        `max_tokens`."""
        vision = None if image is None else self.encode_image(image)
        sampler = Sampler(
            SamplingParams(
                temperature=temperature,
                top_k=top_k,
                top_p=top_p,
                repetition_penalty=repetition_penalty,
                seed=seed,
            )
        )
        stops = self.stop_ids if stop_ids is None else frozenset(stop_ids)
        fusion = self.fusion if vision is not None else None
        with self._lock:
            self._generation += 1
            mine = self._generation
            if fusion is not None and vision is not None:
                fusion.set_image(vision)  # under the lock: no other stream is mid-step
        tokens = decode_n_tokens(
            self.decoder if vision is not None else self.decoder_for(task),
            list(ids),
            max_tokens=max_tokens,
            sampler=sampler,
            stop_ids=stops,
            cancel=cancel,
            speculative=speculative,
            fusion=fusion,
            reuse_min=reuse_min,
            spelling=SpellingConstraint(self.tokenizer, spell) if spell else None,
        )
        try:
            while True:
                # The lock covers the decoder passes only, never a suspended stream, so a
                # stream its caller forgot cannot block the next request.
                with self._lock:
                    if self._generation != mine:
                        return  # a newer generation took over the KV cache
                    token = next(tokens, None)
                if token is None:
                    return
                yield token
        finally:
            tokens.close()

    def generate_tokens(self, ids: Sequence[int], **kwargs: Any) -> list[int]:
        return list(self.stream_tokens(ids, **kwargs))

    # --- text level ----------------------------------------------------------------------------

    def stream(
        self,
        prompt: str,
        *,
        max_tokens: int,
        temperature: float = 0.0,
        stop: list[str] | None = None,
        image: str | Path | np.ndarray | PIL.Image.Image | None = None,
        cancel: threading.Event | None = None,
        speculative: bool = True,
        top_k: int = 0,
        top_p: float = 1.0,
        repetition_penalty: float = 1.0,
        seed: int | None = None,
        task: str | None = None,
    ) -> Iterator[str]:
        """Text pieces of the continuation of `prompt` (sent as it is: apply the chat template
        first for a chat model), ending at a stop token, a stop string, `max_tokens`, or when
        `cancel` is set. `task`: as in `stream_tokens`."""
        if image is not None and not self.takes_images:
            raise ValueError(
                f"{self.path} is a text-only {self.architecture!r} model: it cannot take an image"
            )
        ids = self.tokenizer.encode(prompt, add_special=True)
        tokens = self.stream_tokens(
            ids,
            max_tokens=max_tokens,
            temperature=temperature,
            top_k=top_k,
            top_p=top_p,
            repetition_penalty=repetition_penalty,
            seed=seed,
            cancel=cancel,
            speculative=speculative,
            image=image,
            task=task,
        )
        return stream_text(self._decode_text, tokens, stop or [])

    def _decode_text(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special=True)

    def generate(self, prompt: str, **kwargs: Any) -> str:
        return "".join(self.stream(prompt, **kwargs))

    # --- embeddings ----------------------------------------------------------------------------

    def embed(self, text: str) -> np.ndarray:
        """The mean over `text`'s tokens of the decoder's final hidden states, as the output
        head reads them (after the final RMSNorm): f32[dim], not normalised.

        The text runs from position 0 as a prompt of its own (a cached prefix is not
        reused: every token's state is needed), so it takes the KV cache over and a stream
        still open stops at its next token."""
        ids = self.tokenizer.encode(text, add_special=True)
        if not ids:
            raise ValueError("nothing to embed: the text has no tokens")
        if len(ids) >= self.n_ctx:
            raise ValueError(f"the text has {len(ids)} tokens; the context holds {self.n_ctx}")
        decoder, cfg = self.decoder, self.decoder.cfg
        total = np.zeros(cfg.dim, np.float64)
        normed = np.empty((PREFILL_CHUNK, cfg.dim), np.float32)
        with self._lock:
            self._generation += 1
            decoder.text_hook = None  # no image: the text side of fusion stays out
            decoder.cache.rollback(0)
            for start in range(0, len(ids), PREFILL_CHUNK):
                chunk = ids[start : start + PREFILL_CHUNK]
                decoder.forward(chunk)  # leaves the chunk's residual stream in state.x
                n = len(chunk)
                K.rms_norm(decoder.state.x[:n], decoder.weights.output_norm, cfg.norm_eps,
                           out=normed[:n])
                total += normed[:n].sum(axis=0, dtype=np.float64)
        return (total / len(ids)).astype(np.float32)
