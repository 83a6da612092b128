"""lossnet.memory: freed memory is kept for reuse (glibc), by the CLI and the trainer, and can be turned off.

Each check runs in a fresh process: the setting is process-wide, and this worker's earlier tests may have made it.
What is counted is the page faults of allocating, touching and freeing a 64 MiB tensor three times, after four such
rounds to warm up: glibc's default serves such a block with a fresh mmap every time (16384 faults of 4 KiB pages a
round); kept, the heap that the warm-up rounds grew serves it, and no new page is touched. (Kept, the heap grows
twice, in the first round and in the second or the third: a small block allocated in between splits the freed
space. From the fourth round on no round faulted, in 24 runs of 12 rounds.)
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(
    platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="the setting is glibc's"
)

#: Prints ``{"kept": ..., "faults": ..., "rss_mib": ...}``: ``setup`` runs first in the fresh process, ``after`` after the
#: counted rounds, before the resident memory is read.
_PROBE = """
import json, resource, torch
{setup}
from lossnet.memory import keep_freed_memory
kept = keep_freed_memory.cache_info().currsize == 1 and keep_freed_memory()
def rounds(n):
    for _ in range(n):
        block = torch.empty(16 << 20)  # 64 MiB of float32
        block.fill_(1.0)
        del block
rounds(4)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
rounds(3)
faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
{after}
with open("/proc/self/statm") as statm:
    rss_mib = int(statm.read().split()[1]) * resource.getpagesize() / 2**20
print(json.dumps({{"kept": kept, "faults": faults, "rss_mib": rss_mib}}))
"""

#: At least one fault per page in each of the 3 rounds, with pages of 2 MiB (where transparent huge pages are on
#: for every allocation) or 4 KiB (16384 a round).
_EVERY_ROUND = 3 * (64 << 20) // (2 << 20)


def _probe(setup: str, after: str = "", **env: str) -> dict:
    code = _PROBE.format(setup=setup, after=after)
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env={**os.environ, **env}
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_kept_memory_is_reused_where_the_default_asks_the_kernel_again() -> None:
    default = _probe("")  # nothing called it: glibc's own behaviour
    kept = _probe("from lossnet.memory import keep_freed_memory; keep_freed_memory()")
    assert default["kept"] is False and kept["kept"] is True
    assert default["faults"] >= _EVERY_ROUND, default  # every round faults its pages in again
    assert kept["faults"] <= 0.05 * default["faults"], (kept, default)  # none: the memory is reused


def test_the_switch_turns_it_off() -> None:
    off = _probe("from lossnet.memory import keep_freed_memory; keep_freed_memory()", LOSSNET_KEEP_FREED_MEMORY="0")
    assert off["kept"] is False and off["faults"] >= _EVERY_ROUND, off



def test_release_hands_the_kept_memory_back() -> None:
    keep = "from lossnet.memory import keep_freed_memory; keep_freed_memory()"
    release = "from lossnet.memory import release_freed_memory; release_freed_memory()"
    kept, released = _probe(keep), _probe(keep, after=release)
    assert kept["rss_mib"] - released["rss_mib"] >= 48, (kept, released)  # the 64 MiB block's pages, about
    untouched = _probe("", after=release)  # not kept: nothing to hand back, and nothing changes
    assert untouched["kept"] is False and untouched["faults"] >= _EVERY_ROUND


def test_apply_hands_memory_back_after_each_image(tmp_path, monkeypatch) -> None:
    """Kept across images of other sizes, each image's blocks added to the last one's peak (lossnet.memory)."""
    import torch

    import lossnet.inference.files as files
    from lossnet.inference import apply_files
    from tests.inference.checkpoints import make_checkpoint, write_png

    make_checkpoint(tmp_path / "m.safetensors", "restore")
    for name, size in (("a", 24), ("b", 40)):
        write_png(tmp_path / "in" / f"{name}.png", torch.rand(1, 3, size, size))
    calls = []
    monkeypatch.setattr(files, "release_freed_memory", lambda: calls.append(1))
    summary = apply_files(tmp_path / "m.safetensors", tmp_path / "in", tmp_path / "out", device="cpu")
    assert len(summary.written) == 2 and len(calls) == 2


@pytest.mark.slow  # a CLI command and a 1-step run in child processes, about 6 s
def test_the_cli_and_the_trainer_keep_it(tmp_path) -> None:
    cli = "from lossnet.cli import main; main(['layers', 'vgg11'])"
    assert _probe(cli)["kept"] is True
    trainer = (
        "from lossnet.train import task_config, train\n"
        f"train(task_config('restore', model_kwargs={{'depth': 1, 'base_channels': 4}}, crop_size=32, val_size=32, "
        f"image_size=64, batch_size=2, steps=1, device='cpu', loss_weights=None, out_dir={str(tmp_path)!r}))"
    )
    assert _probe(trainer)["kept"] is True
