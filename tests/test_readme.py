"""The README as a reader uses it: its Python blocks run as written, its command lines parse, and `make
check-quickstart` extracts what a reader copies."""

from __future__ import annotations

import ast
import re
import shlex
from pathlib import Path

import pytest
import torch

from lossnet.offline import EXTRA
from tools.check_quickstart import quickstart_blocks

README = Path(__file__).resolve().parents[1] / "README.md"


def test_quickstart_runs_and_prints_the_documented_terms(capsys) -> None:
    _, code = quickstart_blocks(README.read_text())
    exec(compile(code, "README quickstart", "exec"), {})
    printed = capsys.readouterr().out
    for term in ("'pixel'", "'feature.relu2_2'", "'style.relu1_2'", "'style.relu3_3'", "'tv'", "'total'"):
        assert term in printed


def test_check_quickstart_extracts_the_install_lines_and_the_code_under_quickstart() -> None:
    text = README.read_text()
    install, code = quickstart_blocks(text)
    section = text[text.index("\n## Quickstart\n") :]
    section = section[: re.search(r"^#{1,6} ", section[4:], re.M).start() + 4]
    # exactly what the section shows, one block each
    assert f"```bash\n{install}```" in section and f"```python\n{code}```" in section
    assert section.count("```bash") == 1 and section.count("```python") == 1
    ast.parse(code)
    commands = [shlex.split(line, comments=True) for line in install.splitlines()]
    assert [c for c in commands if c] == [["pip", "install", f".[{EXTRA}]"], ["lossnet", "setup-offline"]]
    # the in-suite run above and the check run the same code: the first python block of the README
    assert re.search(r"```python\n(.*?)```", text, re.S).group(1) == code


@pytest.mark.parametrize(
    "readme, problem",
    [
        ("# x\n\n## Usage\n\n```python\nx = 1\n```\n", "no '## Quickstart' section"),
        ("## Quickstart\n\n```bash\npip install .\n```\n\n## Next\n\n```python\nx = 1\n```\n", "one ```python block"),
        ("\n## Quickstart\n\n```bash\na\n```\n```bash\nb\n```\n```python\nx = 1\n```\n", "holds 2"),
        ("\n## Quickstart\n\n```bash\na\n```\n```python\nx = (\n```\n", "was never closed"),
    ],
)
def test_the_extractor_refuses_what_it_cannot_run_as_one_script(readme: str, problem: str) -> None:
    with pytest.raises((ValueError, SyntaxError), match=re.escape(problem)):
        quickstart_blocks(readme)


def test_readme_starts_with_the_two_commands() -> None:
    first_block = re.search(r"```bash\n(.*?)```", README.read_text(), re.S).group(1)
    assert first_block.splitlines()[0].startswith("make demo")
    assert first_block.splitlines()[1].startswith("make test")


def _command_lines(text: str) -> list[str]:
    """The ``lossnet ...`` lines inside the README's code fences, with backslash continuations joined."""
    lines, in_block, pending = [], False, ""
    for raw in text.splitlines():
        if raw.startswith("```"):
            in_block, pending = not in_block, ""
        elif in_block:
            pending += raw.rstrip()
            if pending.endswith("\\"):
                pending = pending[:-1] + " "
                continue
            lines.append(pending.strip())
            pending = ""
    return [line for line in lines if line.startswith("lossnet ")]


def test_every_lossnet_command_in_the_readme_parses(capsys) -> None:
    """The README's command lines use flags and choices the CLI has: each parses (nothing runs). A renamed flag
    or a dropped choice shows here, not on a reader's first try."""
    from lossnet.cli import build_parser

    parser = build_parser()
    commands = [shlex.split(line, comments=True)[1:] for line in _command_lines(README.read_text())]
    assert len(commands) >= 30  # train, apply, export, info, eval, compare, stylize, sweep, report...
    for argv in commands:
        try:
            parser.parse_args(argv)
        except SystemExit as stop:
            assert not stop.code, f"README: `lossnet {shlex.join(argv)}` does not parse: {capsys.readouterr().err}"


def _python_blocks() -> list[str]:
    return re.findall(r"^```python\n(.*?)^```$", README.read_text(), re.S | re.M)


def test_the_shares_snippet_runs_after_the_quickstart_and_returns_what_it_says(capsys) -> None:
    """"Recipes in shares" continues the Quickstart's session (its ``pred`` and ``target``): both run as written, and
    the comments' claims hold: the keywords are the loss's, and the gradient shares (the default rule) are the asked
    ones."""
    quickstart, shares, *_ = _python_blocks()
    scope: dict = {}
    exec(compile(quickstart + shares, "README quickstart + shares", "exec"), scope)
    balance, loss = scope["balance"], scope["loss"]
    assert set(balance.keywords) == {"pixel_weight", "feature_layers"}
    assert list(balance.keywords["feature_layers"]) == ["relu2_2"]
    assert loss.pixel_weight == balance.keywords["pixel_weight"]
    gradient = loss.shares(scope["pred"].detach(), scope["target"])["gradient"]
    assert gradient == pytest.approx({"feature.relu2_2": 0.7, "pixel": 0.3}, abs=1e-3)


def test_the_onnxruntime_snippet_runs_as_written_on_an_exported_network(tmp_path, monkeypatch) -> None:
    """"Use your model elsewhere": onnxruntime alone (no lossnet, no torch in the snippet) upscales photo.png."""
    pytest.importorskip("onnxruntime", reason="the export extra (pip install 'lossnet[export]') is not installed")
    import numpy as np
    from PIL import Image

    from lossnet.export import export_onnx
    from lossnet.models import SuperResNet

    (snippet,) = [b for b in _python_blocks() if "onnxruntime" in b]
    torch.manual_seed(0)
    export_onnx(SuperResNet(scale=4, channels=4, num_residual=1).eval(), tmp_path / "sr.onnx")
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (20, 28, 3), dtype=np.uint8)).save(tmp_path / "photo.png")
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    exec(compile(snippet, "README onnxruntime", "exec"), scope)
    with Image.open(tmp_path / "photo_up.png") as written:
        assert written.size == (4 * 28, 4 * 20)
    assert scope["meta"]["lossnet.scale"] == "4"
