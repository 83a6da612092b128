"""The one file walker: every file under a folder, in a stable order, as training and ``apply`` find them."""

from __future__ import annotations

import os
from pathlib import Path

from lossnet.errors import InputError, InputTypeError


def walk_files(folder: str | os.PathLike[str], exclude: str | os.PathLike[str] | None = None) -> list[Path]:
    """Every non-hidden file under ``folder``, sorted by relative path.

    Hidden files and folders (names starting with ``.``) are skipped. Symlinked folders are
    followed once: a symlink loop, or a second link to a folder already seen, is not entered
    again. The folder ``exclude`` (compared by real path) is left out, unless it is ``folder``
    itself; ``lossnet apply`` uses it for an output folder that lies inside an input folder.

    Args:
        folder: the folder to search recursively.
        exclude: a folder to leave out, or ``None``.

    Returns:
        the files, as ``folder / relative path``, sorted by the parts of the relative path
        (so ``a/b.png`` comes before ``a.png/c.png``, and the order is the same on every OS).

    Example:
        >>> import tempfile
        >>> root = Path(tempfile.mkdtemp())
        >>> for name in ("b.png", "a/c.png", ".hidden.png", "out/d.png"):
        ...     (root / name).parent.mkdir(parents=True, exist_ok=True)
        ...     (root / name).touch()
        >>> [p.relative_to(root).as_posix() for p in walk_files(root, exclude=root / "out")]
        ['a/c.png', 'b.png']
    """
    folder = Path(folder)
    skip = None if exclude is None else os.path.realpath(exclude)
    top = os.path.realpath(folder)
    found: list[Path] = []
    seen: set[str] = set()
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
        real = os.path.realpath(dirpath)
        if real in seen or (real == skip and real != top):
            dirnames[:] = []  # a symlink loop or a second link to the same folder, or the excluded folder
            continue
        seen.add(real)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        found += [Path(dirpath, f) for f in filenames if not f.startswith(".")]
    return sorted(found, key=lambda p: p.relative_to(folder).parts)


def find_images(root: object, extensions: tuple[str, ...]) -> tuple[list[Path], list[Path]]:
    """``(image files, other files)`` under ``root``: a folder, or a list of files and folders (walked with :func:`walk_files`).

    An image file is one whose suffix (any case) is in ``extensions``.
    """
    if isinstance(root, (str, os.PathLike)):
        folder = Path(root)
        if not folder.exists():
            raise FileNotFoundError(f"no such folder: {folder}")
        if not folder.is_dir():
            raise InputError(
                f"root must be a folder or a list of image files; got the file {folder}. Pass [{str(folder)!r}]."
            )
        entries = [folder]
    elif isinstance(root, (list, tuple)):
        if not root:
            raise InputError("root is an empty list: pass a folder or a non-empty list of image files")
        entries = []
        for item in root:
            if not isinstance(item, (str, os.PathLike)):
                raise InputTypeError(f"root entries must be paths; got {type(item).__name__} ({item!r})")
            path = Path(item)
            if not path.exists():
                raise FileNotFoundError(f"no such image file or folder: {path}")
            entries.append(path)
    else:
        raise InputTypeError(f"root must be a folder or a list of paths; got {type(root).__name__}")

    images: list[Path] = []
    ignored: list[Path] = []
    for entry in entries:
        for path in walk_files(entry) if entry.is_dir() else [entry]:
            (images if path.suffix.lower() in extensions else ignored).append(path)
    return images, ignored
