"""Where an imported zoo came from: format, path, content hash and importer version.

The content hash is the SHA-256 of the lines ``<sha256 of a file>  <its path relative to
the source>`` sorted by path, over every file the import read (state dicts, tables, JSON):
it does not depend on the order of reading, and any changed, added or removed file
changes it."""

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


def content_sha256(file_hashes: dict[str, str]) -> str:
    lines = "".join(f"{digest}  {name}\n" for name, digest in sorted(file_hashes.items()))
    return hashlib.sha256(lines.encode()).hexdigest()


def provenance(fmt: str, path, file_hashes: dict[str, str]) -> dict:
    return {
        "format": fmt,
        "path": str(path),
        "content_sha256": content_sha256(file_hashes),
        "files": len(file_hashes),
        "importer": f"weightzoo {__version__}",
        "imported_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def provenance_json(value: dict) -> str:
    return json.dumps(value, sort_keys=True)
