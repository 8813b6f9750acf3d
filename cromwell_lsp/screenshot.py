"""Screenshot to code, the steps every door shares: read the picture with the code reader, give
the transcript to the language model, and choose what is offered.

The reader (engine/reader) is the source of truth for what the picture shows; the model may
mend its reading errors, not rewrite the file. So the model's answer is offered only when it
parses (for a language we can parse) and stays close to the transcript; otherwise the
transcript itself is, when it parses; when neither parses (a cropped snippet often does not)
the closer-to-the-picture transcript is offered. A picture with no text in it (a mockup, a
chart) has an empty transcript: the model then answers from the picture alone, as before.
"""

from __future__ import annotations

import ast
import textwrap
from dataclasses import dataclass

from engine.eval.screenshot import char_error_rate

# How far (character error rate against the transcript) the model's answer may stray: about
# the reader's error rate on hard pictures. Further is a rewrite, not a mended reading.
MAX_DRIFT = 0.15


@dataclass(frozen=True)
class Reading:
    transcript: str  # "" when the picture shows no text, or no reader is installed
    seconds: float
    note: str | None  # why there is no transcript, when there is none


@dataclass(frozen=True)
class Choice:
    code: str
    source: str  # "model" or "transcript"


def read(image: str, suffix: str) -> Reading:
    """The transcript of `image`; an empty one (with the reason) when it cannot be read."""
    from engine.reader.read import ReaderUnavailable, read_screenshot

    try:
        t = read_screenshot(image, suffix)
    except ReaderUnavailable as err:
        return Reading("", 0.0, str(err))
    return Reading(t.text, t.seconds, None if t.text.strip() else "no text found in the image")


def parses(code: str, suffix: str) -> bool | None:
    """Whether `code` parses as the file type `suffix`; None where we cannot tell."""
    if suffix.lower() not in (".py", ".pyi", ".pyw"):
        return None
    try:
        ast.parse(textwrap.dedent(code))
    except (SyntaxError, ValueError):
        return False
    return True


def choose(answer: str, transcript: str, suffix: str) -> Choice:
    """What to offer, from the model's code `answer` and the reader's `transcript`."""
    if not transcript.strip():
        return Choice(answer, "model")
    close = bool(answer.strip()) and char_error_rate(answer, transcript) <= MAX_DRIFT
    answer_ok, transcript_ok = parses(answer, suffix), parses(transcript, suffix)
    if close and answer_ok is not False:
        return Choice(answer, "model")
    if transcript_ok is not False:
        return Choice(transcript, "transcript")
    if close and answer_ok:
        return Choice(answer, "model")
    return Choice(transcript, "transcript")
