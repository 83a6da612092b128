"""Run README.md's install lines and Quickstart code, as written, in a throwaway venv (``make check-quickstart``).

The venv reuses the torch of the environment that runs this script (torch and what it requires, linked in
through a ``.pth`` file, nothing else of that environment), so no torch is downloaded. The install
lines run with the venv's ``bin`` first on ``PATH``, as after ``source venv/bin/activate``, in a copy of
the working tree as a clone would have it (its tracked and untracked, not ignored, files: no build
folder of an earlier install leaks in, and none is left in the repository); the Quickstart code then
runs from an empty folder. Any failure exits non-zero with
the step's output. It needs the package registry, so it is no test (tests never touch the network);
``tests/test_readme.py`` checks what it extracts.

Usage: ``.venv/bin/python tools/check_quickstart.py [--keep]``
"""

from __future__ import annotations

import argparse
import ast
import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
SECTION = "## Quickstart"


def quickstart_blocks(readme: str) -> tuple[str, str]:
    """The Quickstart section's install lines (its one ``bash`` block) and code (its one ``python`` block).

    The section runs from ``## Quickstart`` to the next heading of any level.

    Raises:
        ValueError: no such section, or not exactly one block of each kind in it, or code that does not parse.
    """
    heading = re.search(rf"^{SECTION}$", readme, re.M)
    if heading is None:
        raise ValueError(f"README.md has no {SECTION!r} section")
    body = readme[heading.end() :]
    following = re.search(r"^#{1,6} ", body, re.M)
    body = body[: following.start()] if following else body
    blocks = {}
    for language in ("bash", "python"):
        found = re.findall(rf"^```{language}\n(.*?)^```$", body, re.S | re.M)
        if len(found) != 1:
            raise ValueError(f"README.md's Quickstart must hold exactly one ```{language} block; it holds {len(found)}")
        blocks[language] = found[0]
    ast.parse(blocks["python"], "README Quickstart")
    return blocks["bash"], blocks["python"]


def torch_closure() -> list[importlib.metadata.Distribution]:
    """torch and every distribution it requires (recursively, extras left out), as installed here."""
    seen: dict[str, importlib.metadata.Distribution] = {}
    todo = ["torch"]
    while todo:
        name = re.split(r"[^A-Za-z0-9._-]", todo.pop(), maxsplit=1)[0].lower().replace("_", "-")
        if name in seen or name in ("pip", "setuptools"):  # the new venv has its own
            continue
        try:
            dist = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            continue  # a requirement for another platform; pip judges
        seen[name] = dist
        todo += [r for r in dist.requires or [] if "extra ==" not in r]
    return list(seen.values())


def link_torch(target: Path) -> list[str]:
    """Symlink torch's distributions (their top-level files and metadata folders) into ``target``."""
    target.mkdir(parents=True)
    names = []
    for dist in torch_closure():
        base = Path(str(dist.locate_file("")))
        tops = {Path(str(f)).parts[0] for f in dist.files or []} - {"..", "__pycache__"}
        for top in sorted(tops):
            if (base / top).exists() and not (target / top).exists():
                (target / top).symlink_to(base / top)
        names.append(f"{dist.metadata['Name']} {dist.version}")
    return names


def copy_tree(target: Path) -> Path:
    """Copy the files a clone of the working tree would have (tracked, and untracked but not ignored)."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        if (ROOT / name).is_file():  # a deleted, not yet committed file is still listed
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, target / name)
    return target


def step(title: str, command: list[str], **kwargs: object) -> str:
    """Run one step; print its time; on failure print its output and exit 1."""
    print(f"== {title}", flush=True)
    started = time.perf_counter()
    result = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kwargs)
    print(f"   {time.perf_counter() - started:.1f} s", flush=True)
    if result.returncode != 0:
        print(result.stdout)
        sys.exit(f"check-quickstart FAILED at: {title} (exit status {result.returncode})")
    return result.stdout


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", action="store_true", help="keep the throwaway folder (printed) for a look")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    install, code = quickstart_blocks(README.read_text())
    work = Path(tempfile.mkdtemp(prefix="lossnet-quickstart-"))
    venv, bin_dir = work / "venv", work / "venv" / "bin"
    step("create the throwaway venv", [getattr(sys, "_base_executable", sys.executable), "-m", "venv", str(venv)])
    python = bin_dir / "python"
    purelib = "import sysconfig; print(sysconfig.get_path('purelib'))"
    site = Path(step("find its site-packages", [str(python), "-c", purelib]).strip())
    linked = link_torch(work / "torch-site")
    (site / "reuse_torch.pth").write_text(str(work / "torch-site") + "\n")
    print("   reusing " + ", ".join(linked))

    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env.update(VIRTUAL_ENV=str(venv), PATH=f"{bin_dir}{os.pathsep}{env.get('PATH', '')}", PYTHONNOUSERSITE="1")
    clone = copy_tree(work / "clone")
    print("   " + "\n   ".join(install.strip().splitlines()))
    title = "README install lines, in a copy of the working tree"
    out = step(title, ["bash", "-euo", "pipefail", "-c", install], cwd=clone, env=env)
    print("   " + "\n   ".join(out.strip().splitlines()[-8:]))
    where = step(
        "torch reused, lossnet installed in the venv",
        [str(python), "-c", "import torch, lossnet; print(torch.__file__); print(lossnet.__file__)"],
        cwd=work,
        env=env,
    ).split()
    if not (where[0].startswith(str(work / "torch-site")) and where[1].startswith(str(site))):
        sys.exit(f"check-quickstart FAILED: torch from {where[0]}, lossnet from {where[1]}; expected the venv's")
    (work / "quickstart.py").write_text(code)
    out = step("README Quickstart code", [str(python), "quickstart.py"], cwd=work, env=env)
    print("   " + out.strip().replace("\n", "\n   "))
    if not args.keep:
        shutil.rmtree(work)  # the links into the torch environment are removed, never followed
    else:
        print(f"   kept {work}")
    print(f"check-quickstart passed in {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
