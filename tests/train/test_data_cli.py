"""`cromwell data`: index, held-out list, previews, through the real command line."""

from __future__ import annotations

import json
import shutil
import sysconfig
from pathlib import Path

from click.testing import CliRunner
from PIL import Image

from cromwell_cli.main import main
from engine.data.corpus import CorpusIndex

STDLIB = Path(sysconfig.get_paths()["stdlib"])


def test_index_heldout_and_previews(tmp_path: Path) -> None:
    code = tmp_path / "code"
    code.mkdir()
    for name in ("textwrap.py", "shlex.py", "colorsys.py", "bisect.py", "heapq.py"):
        shutil.copy(STDLIB / name, code / name)
    index_file = tmp_path / "index.json"
    runner = CliRunner()
    result = runner.invoke(main, ["data", "index", "--no-stdlib", "--folder", str(code),
                                  "--heldout", "0.3", "--workers", "0", "--out", str(index_file)])
    assert result.exit_code == 0, result.output
    stats = json.loads(result.output)
    assert stats["train_files"] + stats["heldout_files"] == 5
    heldout = runner.invoke(main, ["data", "heldout", str(index_file)]).output.split()
    assert heldout == CorpusIndex.load(index_file).heldout_paths()

    edit = runner.invoke(main, ["data", "preview", "edit", "--index", str(index_file),
                                "--count", "2"])
    assert edit.exit_code == 0, edit.output
    assert edit.output.count("Reply with the new version of these lines only.") == 2
    assert edit.output.count("<|im_start|>assistant\n```python\n## target\n") == 2

    shots = tmp_path / "shots"
    render = runner.invoke(main, ["data", "preview", "render", "--index", str(index_file),
                                  "--count", "2", "--out", str(shots)])
    assert render.exit_code == 0, render.output
    pictures = sorted(shots.glob("*.png"))
    assert len(pictures) == 2
    width, height = Image.open(pictures[0]).size
    assert width % 8 == 0 and height % 8 == 0
    target = (shots / "render-000.txt").read_text()
    assert target.strip() and target.strip().split("\n")[0] in "".join(
        (code / n).read_text() for n in ("textwrap.py", "shlex.py", "colorsys.py", "bisect.py",
                                          "heapq.py"))

    missing = runner.invoke(main, ["data", "preview", "chart"])
    assert missing.exit_code != 0 and "--out DIR" in missing.output
    charts = runner.invoke(main, ["data", "preview", "chart", "--count", "1", "--out",
                                  str(shots)])
    assert charts.exit_code == 0, charts.output  # beside the renders, not over them
    assert sorted(p.name for p in shots.glob("*.png")) == [
        "chart-000.png", "render-000.png", "render-001.png"]


def test_previews_name_the_flag_they_need() -> None:
    runner = CliRunner()
    for kind in ("edit", "fim", "render"):
        result = runner.invoke(main, ["data", "preview", kind])
        assert result.exit_code == 1 and "--index FILE" in result.output, result.output
    result = runner.invoke(main, ["data", "preview", "commit"])
    assert result.exit_code == 1 and "--repo DIR" in result.output, result.output
