"""Where an imported zoo came from: format, path, content hash and importer version.

The content hash is the SHA-256 of the lines ``<sha256 of a file>  <its path relative to
the source>``, one for every file the import read (state dicts, tables, JSON), in the order
the import reads them: each trial's files in trial order, then the source's tables and JSON
files. That order follows from the source alone (trial ids, the table's order, folder
names), so the same source gives the same hash, and any changed, added or removed file
changes it. The lines are hashed as they come (:class:`ContentHash`): memory holds no list
of files, whatever the zoo's size."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path

from ... import __version__

HASH_BLOCK = 1 << 22


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(HASH_BLOCK):
            h.update(block)
    return h.hexdigest()


def relative(path: Path, root: Path) -> str:
    try:
        return Path(path).resolve().relative_to(Path(root).resolve()).as_posix()
    except ValueError:  # a CSV outside the folder: its absolute path
        return Path(path).resolve().as_posix()


class ContentHash:
    """The running content hash: ``add`` each file read, in reading order."""

    def __init__(self):
        self._sha256 = hashlib.sha256()
        self.files = 0

    def add(self, name: str, digest: str) -> None:
        """One file: its path relative to the source and the SHA-256 of its bytes."""
        self._sha256.update(f"{digest}  {name}\n".encode())
        self.files += 1

    def hexdigest(self) -> str:
        return self._sha256.hexdigest()


def provenance(fmt: str, path, content: ContentHash) -> dict:
    return {
        "format": fmt,
        "path": str(path),
        "content_sha256": content.hexdigest(),
        "files": content.files,
        "importer": f"weightzoo {__version__}",
        "imported_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def provenance_json(value: dict) -> str:
    return json.dumps(value, sort_keys=True)
