"""The one error every importer raises for bad input."""

from __future__ import annotations


class ZooImportError(ValueError):
    """Input that cannot be imported: the message names the file or row, what is wrong
    and what to do. Nothing is written when it is raised (the output is atomic)."""
