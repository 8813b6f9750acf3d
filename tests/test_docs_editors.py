"""docs/EDITORS.md and the README list the language server's settings. Each table must hold
exactly the keys of cromwell_lsp/settings.py, in its order, with their defaults (as the client
would send them) and their docstrings, so the documentation cannot drift from the server. A
failure prints the table to paste in its place."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cromwell_lsp.settings import Settings, documentation, to_wire

ROOT = Path(__file__).resolve().parents[1]
EDITORS = ROOT / "docs" / "EDITORS.md"
README = ROOT / "README.md"
HEADER = "| key | default | meaning |"


def expected_rows() -> list[tuple[str, str, str]]:
    docs = documentation()
    return [
        (f"`{key}`", f"`{json.dumps(value)}`", docs[key])
        for key, value in to_wire(Settings()).items()
    ]


def render(rows: list[tuple[str, str, str]]) -> str:
    lines = [HEADER, "| --- | --- | --- |"] + [f"| {k} | {d} | {m} |" for k, d, m in rows]
    return "\n".join(lines) + "\n"


def settings_table(text: str, heading: str) -> list[tuple[str, str, str]]:
    """The rows of the first settings table after `heading`, each cell stripped."""
    start = text.index(HEADER, text.index(heading))
    rows = []
    for line in text[start:].splitlines()[2:]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
        assert len(cells) == 3, f"a settings row without three cells: {line!r}"
        rows.append((cells[0], cells[1], cells[2]))
    return rows


def _section(text: str, heading: str, within: str | None = None) -> str:
    start = text.index(within) if within else 0
    return text[text.index(heading, start) :]


@pytest.mark.parametrize(
    ("path", "heading"),
    [(EDITORS, "## Settings"), (README, "### Settings")],
    ids=["docs/EDITORS.md", "README.md"],
)
def test_settings_table_is_the_servers(path: Path, heading: str) -> None:
    text = path.read_text()
    if path == README:
        # The README's table sits under "## Editors"; an earlier "### Settings" is not it.
        text = _section(text, heading, within="## Editors")
    found = settings_table(text, heading)
    expected = expected_rows()
    assert [r[0] for r in found] == [r[0] for r in expected], (
        f"{path.name}: the keys differ from settings.py; paste:\n{render(expected)}"
    )
    assert found == expected, (
        f"{path.name}: defaults or meanings differ; paste:\n{render(expected)}"
    )


def test_every_setting_key_has_documentation() -> None:
    # The table is built from the docstrings: a key without one would vanish from it.
    assert set(documentation()) == set(to_wire(Settings()))


def _lua_block(text: str, heading: str) -> str:
    section = text[text.index(heading) :]
    start = section.index("```lua\n") + len("```lua\n")
    return section[start : section.index("```\n", start)]


def test_neovim_snippet_is_the_one_the_readme_test_runs() -> None:
    """tests/lsp/test_lsp_neovim.py runs the README's snippet in a real Neovim; the guide must
    show that same snippet, so that it is tested too."""
    readme = _lua_block(README.read_text(), "### Neovim")
    editors = _lua_block(EDITORS.read_text(), "## Neovim")
    assert editors == readme
    assert "vim.lsp.completion.enable(true, client.id, ev.buf, { autotrigger = true })" in editors


def test_readme_points_to_the_editors_guide() -> None:
    editors_section = _section(README.read_text(), "## Editors")
    assert "docs/EDITORS.md" in editors_section.split("\n### ")[0]


def test_rendered_table_parses_back() -> None:
    # The helper that prints the table to paste must print what the check accepts.
    text = "## Settings\n\n" + render(expected_rows()) + "\nafter\n"
    assert settings_table(text, "## Settings") == expected_rows()
