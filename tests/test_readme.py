"""The README's quickstart runs as written."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_quickstart_runs_and_prints_the_documented_terms(capsys) -> None:
    code = re.search(r"```python\n(.*?)```", README.read_text(), re.S).group(1)
    exec(compile(code, "README quickstart", "exec"), {})
    printed = capsys.readouterr().out
    for term in ("'pixel'", "'feature.relu2_2'", "'style.relu1_2'", "'style.relu3_3'", "'tv'", "'total'"):
        assert term in printed


def test_readme_starts_with_the_two_commands() -> None:
    first_block = re.search(r"```bash\n(.*?)```", README.read_text(), re.S).group(1)
    assert first_block.splitlines()[0].startswith("make demo")
    assert first_block.splitlines()[1].startswith("make test")
