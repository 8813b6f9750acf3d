"""Which actions apply where (pure), and the typed settings object."""

from __future__ import annotations

import pytest
from lsprotocol import types

from cromwell_lsp import actions, settings
from cromwell_lsp.actions import ActionRequest, BadRequest
from cromwell_lsp.settings import Settings, SettingsError

SOURCE = '''class Box:
    def volume(self):
        ...

    def label(self):
        """Already documented."""
        return "box"
'''


def offer(
    text=SOURCE,
    start=(2, 8),
    end=None,
    diagnostics=(),
    suffix=".py",
    conf=None,
    cursor_image=None,
    images=(),
):
    end = end or start
    return actions.offer(
        conf or Settings(),
        "file:///w/box.py",
        3,
        text,
        types.Position(*start),
        types.Position(*end),
        list(diagnostics),
        suffix,
        cursor_image,
        images,
    )


def test_offers_by_place():
    assert [a.title for a in offer()] == [
        "Cromwell: Complete function body",
        "Cromwell: Add docstring",
    ]
    body = offer()[0].request
    assert (body.start_line, body.end_line, body.version) == (1, 3, 3)
    # A documented function with a body: nothing to complete, nothing to document.
    assert offer(start=(6, 8)) == []
    # On the class line: the class lacks a docstring.
    assert [a.title for a in offer(start=(0, 3))] == ["Cromwell: Add docstring"]
    sel = offer(start=(4, 0), end=(6, 5))[0]
    assert sel.title == "Cromwell: Edit selection…" and (
        sel.request.start_line,
        sel.request.end_line,
    ) == (4, 7)


def test_fix_actions_per_diagnostic_and_screenshots():
    diag = types.Diagnostic(
        range=types.Range(types.Position(6, 15), types.Position(6, 20)), message="x" * 80
    )
    fix = [a for a in offer(start=(6, 8), diagnostics=[diag]) if a.kind == "quickfix"]
    assert len(fix) == 1 and fix[0].title == "Cromwell: Fix: " + "x" * 59 + "…"
    assert (fix[0].request.start_line, fix[0].request.end_line) == (4, 7)  # the whole method
    shots = offer(start=(6, 8), images=["/w/a.png", "/w/b.png", "/w/c.png", "/w/d.png"])
    assert [a.request.image for a in shots] == ["/w/a.png", "/w/b.png", "/w/c.png"]
    assert [a.request.image for a in offer(start=(6, 8), cursor_image="/w/x.png")] == ["/w/x.png"]
    assert actions.image_under_cursor("see ./img/ui.png here", 10) == "./img/ui.png"
    assert actions.image_under_cursor("see ./img/ui.png here", 19) is None
    assert actions.screenshot_target("/w/ui.png", ".py", {"/w/ui.py"}) == "/w/ui_1.py"


def test_other_languages_use_signature_heuristics():
    ts = "export function area(w: number, h: number) {\n}\n"
    titles = [a.title for a in offer(text=ts, start=(0, 5), suffix=".ts")]
    assert titles == ["Cromwell: Complete function body", "Cromwell: Add docstring"]


def test_action_request_round_trip_and_validation():
    req = ActionRequest("fix", "file:///a.py", 2, 1, 4, instruction="boom")
    assert ActionRequest.from_json(req.to_json()) == req
    for bad, message in [
        ([], "must be an object"),
        ({"action": "nope"}, "action must be one of"),
        ({"action": "fix", "uri": ""}, "uri must be"),
        ({"action": "fix", "uri": "u", "start_line": True, "end_line": 1}, "start_line"),
        ({"action": "fix", "uri": "u", "start_line": 3, "end_line": 1}, "before start_line"),
        ({"action": "fix", "uri": "u", "start_line": 0, "end_line": 1, "version": "2"}, "version"),
        (
            {"action": "fix", "uri": "u", "start_line": 0, "end_line": 1, "instruction": 5},
            "instruction",
        ),
        (
            {"action": "fix", "uri": "u", "start_line": 0, "end_line": 1, "extra": 1},
            "unknown fields",
        ),
    ]:
        with pytest.raises(BadRequest, match=message):
            ActionRequest.from_json(bad)


def test_settings_merge_validate_and_document():
    s = settings.merge(Settings(), {"cromwell": {"maxNewTokens": 128, "actions": ["fix"]}})
    assert s.max_new_tokens == 128 and s.actions == ("fix",)
    assert settings.merge(s, None) is s
    with pytest.raises(SettingsError) as err:
        settings.merge(s, {"threads": 0, "actions": ["fly"], "modelPath": ""})
    text = str(err.value)
    assert "threads must be a positive integer" in text and "unknown ['fly']" in text
    assert "modelPath" in text
    with pytest.raises(SettingsError, match="must be an object"):
        settings.merge(s, [1, 2])
    docs = settings.documentation()
    assert set(docs) == set(settings.to_wire(Settings()))  # every key has its docstring
    assert all(docs.values())
