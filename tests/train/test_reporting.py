"""The trainer's progress bar: redrawn as tqdm redraws on a terminal, rarely when its output goes to a file."""

from __future__ import annotations

import io

import pytest

from lossnet.train import reporting


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(("stream", "at_most"), [(io.StringIO, 3), (_Terminal, None)])
def test_a_bar_written_to_a_file_redraws_every_30_seconds_not_every_step(monkeypatch, stream, at_most) -> None:
    out = stream()
    monkeypatch.setattr("sys.stderr", out)
    clock = iter(float(t) for t in range(100_000))  # each tqdm time read advances one second
    monkeypatch.setattr("tqdm.std.time", lambda: next(clock))
    bar = reporting.progress_bar(True, "train x", 0, 200)
    for _ in range(200):
        bar.set_postfix({"pixel": "1.0"}, refresh=False)
        bar.update(1)
    bar.close()
    redraws = out.getvalue().count("\r")
    if at_most is None:  # a terminal: every step is a second apart, so every step redraws
        assert redraws >= 200
    else:  # a file: 200 seconds of steps, one redraw per 30 s at most (plus the first and the last)
        assert 2 <= redraws <= 200 // 30 + at_most, redraws
    assert "200/200" in out.getvalue()
