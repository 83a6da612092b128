"""Every user mistake on the command line: exit 2, ONE line on stderr naming the problem and the fix,
no traceback, and nothing new or changed on disk.

Each case runs ``lossnet.cli.main(argv)`` in-process in a folder prepared by its setup; the whole
folder (inputs and outputs) is fingerprinted before and after. Training-side cases (resume,
``--out-dir``, ``--data``) live in ``tests/train``.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch
from PIL import Image

import lossnet.cli.common
from lossnet import runtime
from lossnet.cli import build_parser, main
from lossnet.data.io import save_image
from lossnet.models import build_model, model_spec
from lossnet.checkpoint import save_checkpoint


def _inputs(tmp: Path) -> None:
    """What every case finds in its folder: images, a bomb, checkpoints, pickles, a file and a read-only folder."""
    torch.manual_seed(0)
    save_image(torch.rand(1, 3, 32, 32), tmp / "img.png")
    # 200 megapixels (Pillow refuses more than 2 * 89.5), 24 kB on disk: a 1-bit PNG of zeros.
    Image.new("1", (20000, 10000)).save(tmp / "bomb.png")
    spec = model_spec("TransformerNet", channels=4, num_residual=1)
    save_checkpoint(tmp / "style.safetensors", build_model(spec).state_dict(), {"model": spec, "task": "style"})
    torch.save({"w": torch.zeros(2)}, tmp / "model.pth")  # zip archive
    torch.save({"w": torch.zeros(2)}, tmp / "legacy.pth", _use_new_zipfile_serialization=False)
    data = (tmp / "style.safetensors").read_bytes()
    (tmp / "truncated.safetensors").write_bytes(data[: len(data) // 2])
    (tmp / "afile").write_text("not a folder\n")
    (tmp / "dir").mkdir()
    (tmp / "ro").mkdir()
    (tmp / "ro" / "old.txt").write_text("keep\n")


def _read_only(tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make ``ro/`` read-only; as root (who may write anyway), make the up-front check see it so."""
    os.chmod(tmp / "ro", 0o555)
    if os.geteuid() == 0:
        real = os.access
        ro = str(tmp / "ro")

        def access(path: os.PathLike[str] | str, mode: int, **kw: object) -> bool:
            return False if os.path.abspath(path).startswith(ro) and mode & os.W_OK else real(path, mode, **kw)

        monkeypatch.setattr(lossnet.cli.common.os, "access", access)


def _never(target: str) -> Callable[[Path, pytest.MonkeyPatch], None]:
    """A setup under which calling ``target`` (module.attr) fails the test: the error must come before it."""

    def setup(tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        def called(*args: object, **kwargs: object) -> None:
            raise AssertionError(f"{target} ran before the mistake was reported")

        monkeypatch.setattr(target, called)

    return setup


def _raises(target: str, err: BaseException) -> Callable[[Path, pytest.MonkeyPatch], None]:
    """A setup under which ``target`` raises ``err`` (an OS error deep in a write, say)."""

    def setup(tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        def fail(*args: object, **kwargs: object) -> None:
            raise err

        monkeypatch.setattr(target, fail)

    return setup


def _cpu_without_native_fp16(tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No GPU, and a CPU like this session's AMD EPYC (AVX-512 BF16, no AVX-512 FP16 or AMX-FP16),
    whatever this machine has. The runtime's cached decisions are a fresh cache for the test."""
    flags = frozenset({"avx2", "avx512f", "avx512bw", "avx512_bf16"})
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    monkeypatch.setattr(runtime, "probe_cpu", lambda: runtime.CpuProbe("EPYC", "x86_64", "AVX512", True, flags))
    monkeypatch.setattr(runtime, "_decide_cached", functools.cache(runtime.decide))


def _offline_hub(tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp.parent / f"{tmp.name}-hub"))  # outside the watched folder


@dataclass
class Case:
    id: str
    argv: list[str]
    expect: tuple[str, ...]  # substrings of the one line: the problem and the fix
    setup: Callable[[Path, pytest.MonkeyPatch], None] | None = None
    forbid: tuple[str, ...] = field(default=())  # e.g. Python argument syntax


LOAD = "lossnet.explore.inputs.load_input"
QUICK = ["--weights", "none", "--arch", "vgg11", "--layers", "relu1_1", "--steps", "1"]
BOMB = ("bomb.png has 200 megapixels", "179-megapixel limit", "shrink it")
READ_ONLY = ("cannot write in", "ro", "choose another --out")
PICKLE = ("PyTorch pickle", "lossnet models are .safetensors", "never unpickles", "Train with lossnet")

CASES = [
    # moved here from tests/test_cli.py
    Case("layers-unknown-arch", ["layers", "vgg17"], ("unknown architecture 'vgg17'", "Did you mean")),
    Case("compare-missing-file", ["compare", "img.png", "nope.png", "--weights", "none"], ("no such image file",)),
    Case(
        "compare-unknown-layer",
        ["compare", "img.png", "img.png", "--weights", "none", "--feature-layers", "relu9_9"],
        ("has no layer 'relu9_9'", "Valid names: `lossnet layers vgg16`"),
        forbid=("layer_names(",),
    ),
    Case(
        "compare-imagenet-offline",
        ["compare", "img.png", "img.png", "--weights", "imagenet"],  # the default, auto, would fall back to HED
        ("ImageNet weights", "--weights hed", "--weights none"),
        _offline_hub,
        forbid=("weights='hed'", "weights=None"),
    ),
    # decompression bombs, at every reader
    Case("compare-bomb", ["compare", "bomb.png", "img.png", "--weights", "none"], BOMB),
    Case("invert-bomb", ["invert", "bomb.png", *QUICK, "--out", "dir/x.png"], BOMB),
    Case("stylize-bomb", ["stylize", "img.png", "bomb.png", "--weights", "none", "--out", "dir/x.png"], BOMB),
    Case(
        "train-style-bomb",
        ["train", "style", "--style-image", "bomb.png", "--out-dir", "dir/run", "--steps", "1"],
        BOMB,
    ),
    # LPIPS and DISTS offline: HED is not their published trunk; refused in one line that names the way out
    Case(
        "train-lpips-offline",
        ["train", "superres", "--loss", "lpips_vgg", "--out-dir", "dir/lp", "--steps", "1"],
        ("LPIPS is only the published metric", "--allow-uncalibrated"),
    ),
    Case(
        "compare-dists-without-l2-pooling",
        ["compare", "img.png", "img.png", "--weights", "none", "--dists-weight", "1", "--allow-uncalibrated"],
        ("L2-pooled VGG16", "--pooling l2"),
    ),
    # output paths: a file in the way, a read-only folder, a folder for a file, a wrong suffix
    Case("demo-out-is-a-file", ["demo", "--no-train", "--out", "afile"], ("--out afile is a file", "folder path")),
    Case("demo-read-only-out", ["demo", "--no-train", "--out", "ro/demo"], READ_ONLY, _read_only),
    Case(
        "eval-read-only-out",
        ["eval", "--model", "style.safetensors", "--data", "img.png", "--out", "ro/eval"],
        READ_ONLY,
        _read_only,
    ),
    Case("eval-out-is-a-file", ["eval", "--model", "style.safetensors", "--out", "afile"], ("--out afile is a file",)),
    Case("invert-read-only-out", ["invert", "img.png", *QUICK, "--out", "ro/x.png"], READ_ONLY, _read_only),
    Case(
        "apply-output-is-a-file",
        ["apply", "--model", "style.safetensors", "--input", "img.png", "--output", "afile"],
        ("--out afile is a file",),
    ),
    Case(
        "apply-read-only-output",
        ["apply", "--model", "style.safetensors", "--input", "img.png", "--output", "ro/out"],
        ("cannot write in", "choose another --out"),
        _read_only,
    ),
    Case(
        "invert-out-suffix-before-work",
        ["invert", "img.png", *QUICK, "--out", "sheet.txt"],
        ("--out sheet.txt", "expected a file name ending in .jpg", "e.g. --out sheet.jpg"),
        _never(LOAD),
    ),
    Case(
        "stylize-out-is-a-folder",
        ["stylize", "img.png", "img.png", "--out", "dir"],
        ("--out dir: expected a file name ending in",),
        _never(LOAD),
    ),
    Case(
        "stylize-out-is-a-folder-with-suffix",
        ["stylize", "img.png", "img.png", "--out", "dir.png"],
        ("--out dir.png is a folder", "give a file name"),
        lambda tmp, mp: (tmp / "dir.png").mkdir(),
    ),
    Case(
        "stylize-curve-under-a-file",
        ["stylize", "img.png", "img.png", "--curve", "afile/curve.png"],
        ("--curve afile/curve.png", "afile is a file, not a folder"),
        _never(LOAD),
    ),
    Case(
        "activations-out-under-a-file",
        ["activations", "img.png", "--out", "afile/act.png"],
        ("afile is a file, not a folder", "choose another --out"),
        _never(LOAD),
    ),
    Case("sweep-out-suffix", ["sweep", "img.png", "img.png", "--out", "sweep"], ("--out sweep", "e.g. --out")),
    Case("report-out-suffix", ["report", "img.png", "--out", "report.png"], ("--out report.png", ".html")),
    Case(
        "report-screenshot-without-browser",
        ["report", "img.png", "--out", "r.html", "--screenshot", "r.png"],
        ("--screenshot needs a headless browser", "leave out --screenshot"),
        lambda tmp, mp: mp.setattr("lossnet.explore.report.find_browser", lambda: None),
    ),
    # an OS error on an output that no up-front check saw
    Case(
        "demo-permission-denied-mid-write",
        ["demo", "--no-train", "--out", "dir/demo"],
        ("permission denied: dir/demo/feature_differences.png", "choose a location you can write to"),
        _raises("lossnet.demo.run_demo", PermissionError(13, "Permission denied", "dir/demo/feature_differences.png")),
    ),
    # a PyTorch pickle where a lossnet model is expected
    Case("apply-pth", ["apply", "--model", "model.pth", "--input", "img.png", "--output", "out"], PICKLE),
    Case("apply-legacy-pth", ["apply", "--model", "legacy.pth", "--input", "img.png", "--output", "out"], PICKLE),
    Case(
        "apply-truncated-checkpoint",
        ["apply", "--model", "truncated.safetensors", "--input", "img.png", "--output", "out"],
        ("truncated, corrupt or not a lossnet checkpoint", "use an earlier checkpoint or retrain"),
    ),
    Case(
        "apply-missing-input",
        ["apply", "--model", "style.safetensors", "--input", "nope.png", "--output", "out"],
        ("no such image file or folder: nope.png",),
    ),
    # a folder where one image is expected
    Case("compare-folder", ["compare", "dir", "img.png", "--weights", "none"], ("dir is a folder", "one image file")),
    Case("invert-folder", ["invert", "dir", "--weights", "none"], ("dir is a folder", "one image file")),
    Case("eval-pth", ["eval", "--model", "model.pth", "--data", "img.png", "--out", "out"], PICKLE),
    # values: CLI syntax in the fix, never Python's
    Case(
        "apply-tile-too-small",
        ["apply", "--model", "style.safetensors", "--input", "img.png", "--output", "out", "--tile", "8"],
        ("tile 8 is too small", "--tile 64 or more", "--tile 0 for the whole image"),
        forbid=("tile=None", "tile >="),
    ),
    Case(
        "apply-negative-overlap",
        ["apply", "--model", "style.safetensors", "--input", "img.png", "--output", "out", "--overlap", "-1"],
        ("--overlap must be",),
    ),
    Case(
        "apply-quality",
        ["apply", "--model", "style.safetensors", "--input", "img.png", "--output", "out", "--quality", "0"],
        ("--quality must be an int in 1-100",),
    ),
    Case(
        "eval-jpeg-quality",
        ["eval", "--model", "style.safetensors", "--task", "restore", "--jpeg-quality", "0", "--out", "out"],
        ("--jpeg-quality must lie in 1-100",),
    ),
    Case("compare-size-zero", ["compare", "img.png", "img.png", "--size", "0"], ("--size must be a positive",)),
    Case("demo-size-zero", ["demo", "--no-train", "--size", "0", "--out", "out"], ("--size must be at least 1",)),
    Case("invert-steps-zero", ["invert", "img.png", "--steps", "0"], ("--steps must be an int >= 1",)),
    Case("invert-max-size-zero", ["invert", "img.png", "--max-size", "0"], ("--max-size must be a positive",)),
    Case(
        "invert-cuda-without-a-gpu",
        ["invert", "img.png", "--device", "cuda"],
        ("'cuda' was asked for but no CUDA GPU is available", "use 'cpu' or 'auto'"),
        lambda tmp, mp: (mp.setattr("torch.cuda.is_available", lambda: False), _never(LOAD)(tmp, mp)),
    ),
    Case(
        "stylize-unknown-device",
        ["stylize", "img.png", "img.png", "--device", "gpu0", "--out", "x.png"],
        ("unknown device 'gpu0'", "expected 'auto', 'cpu', 'cuda' or 'cuda:N'"),
        _never(LOAD),
    ),
]


#: ``--precision fp16`` on a CPU without native fp16: every command refuses it with this one line,
#: from the one rule in lossnet.runtime, before it reads a network or writes anything.
FP16_ON_CPU = (
    "lossnet: error: --precision fp16 is refused on this CPU: it has no native fp16 (AVX2 + AVX-512 + "
    "AVX-512 BF16, without AVX-512 FP16 or AMX-FP16), so fp16 would be emulated, several times slower than "
    "fp32, in fp16's narrow range. Use --precision auto (it picks bf16 here), --precision bf16 or --precision fp32"
)
FP16_COMMANDS = {
    "compare": ["compare", "img.png", "img.png", "--weights", "none"],
    "apply": ["apply", "--model", "style.safetensors", "--input", "img.png", "--output", "out"],
    "eval": ["eval", "--model", "style.safetensors", "--data", "img.png", "--out", "out"],
    "demo": ["demo", "--no-train", "--out", "out"],
    "train": ["train", "superres", "--out-dir", "run", "--steps", "1", "--weights", "none"],
    "stylize": ["stylize", "img.png", "img.png", "--weights", "none", "--steps", "1", "--out", "x.png"],
    "invert": ["invert", "img.png", *QUICK, "--out", "x.png"],
    "activations": ["activations", "img.png", "--weights", "none", "--out", "x.png"],
    "sweep": ["sweep", "img.png", "img.png", "--weights", "none", "--steps", "1", "--out", "x.png"],
    "report": ["report", "img.png", "img.png", *QUICK, "--out", "r.html"],
}
CASES += [
    Case(f"{name}-fp16-on-cpu", [*argv, "--precision", "fp16"], (FP16_ON_CPU,), _cpu_without_native_fp16)
    for name, argv in FP16_COMMANDS.items()
]


def test_every_command_with_a_precision_is_in_the_fp16_table() -> None:
    """A new command with --precision must join FP16_COMMANDS, so it is shown to take the same rule."""
    parser = build_parser()
    (sub,) = (a for a in parser._subparsers._group_actions if isinstance(a, argparse._SubParsersAction))
    with_precision = {name for name, p in sub.choices.items() if "--precision" in p._option_string_actions}
    assert with_precision == set(FP16_COMMANDS)


def _fingerprint(folder: Path) -> dict[str, tuple[int, int, str]]:
    """Every path under ``folder`` with its mode, mtime and content hash (folders: no hash)."""
    out = {}
    for path in sorted(folder.rglob("*")):
        st = path.lstat()
        digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else ""
        out[str(path.relative_to(folder))] = (st.st_mode, st.st_mtime_ns, digest)
    return out


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("inputs")
    _inputs(folder)
    return folder


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_a_user_mistake_is_one_line_exit_2_and_writes_nothing(
    case: Case, prepared: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    for item in prepared.iterdir():  # a fresh copy: no case sees another's leftovers
        target = work / item.name
        if item.is_dir():
            target.mkdir()
            for sub in item.iterdir():
                target.joinpath(sub.name).write_bytes(sub.read_bytes())
        else:
            target.write_bytes(item.read_bytes())
    monkeypatch.chdir(work)
    if case.setup is not None:
        case.setup(work, monkeypatch)
    before = _fingerprint(work)
    try:
        code = main(case.argv)
    finally:
        os.chmod(work / "ro", 0o755)  # so that pytest can clean up
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert code == 2, err
    assert len(lines) == 1, f"expected one line on stderr, got:\n{err}"
    assert lines[0].startswith("lossnet: error: ") and "Traceback" not in err
    for text in case.expect:
        assert text in lines[0]
    for text in case.forbid:
        assert text not in lines[0]
    after = _fingerprint(work)
    after.pop("ro", None), before.pop("ro", None)  # the chmod above
    assert after == before, "files were created or changed"


def test_a_bomb_is_one_line_from_a_real_process(prepared: Path) -> None:
    """The same through the console entry point: nothing but the one line reaches the terminal."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run(
        [sys.executable, "-m", "lossnet", "compare", "bomb.png", "img.png", "--weights", "none"],
        cwd=prepared,
        capture_output=True,
        text=True,
        env=env,
    )
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "179-megapixel limit" in done.stderr and "Traceback" not in done.stderr
