"""Writing files that later runs trust (checkpoints, classifier weights), and hashing them."""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch


def write_atomically(path: str | os.PathLike, write: Callable[[str], Any]) -> Path:
    """Call ``write(tmp_path)`` for a temporary file beside ``path``, then rename it into place, so
    a crash mid-write leaves the previous file (or none), never a truncated one.

    Returns:
        ``path`` as a Path.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        # mkstemp makes the file private (0600); give it the mode any other new file gets.
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _umask() -> int:
    mask = os.umask(0)  # the only way to read it is to set it
    os.umask(mask)
    return mask


def save_atomically(obj: Any, path: str | os.PathLike) -> Path:
    """``torch.save`` through ``write_atomically``.

    It saves to an open file: given a path, torch.save names the archive's folder after the file,
    so the bytes, and a shipped file's SHA-256, would change with the temporary name.
    """

    def save(tmp: str) -> None:
        with open(tmp, "wb") as file:
            torch.save(obj, file)

    return write_atomically(path, save)


def sha256_of_file(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file's bytes, read in blocks (Inception's weights are ~100 MB)."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
