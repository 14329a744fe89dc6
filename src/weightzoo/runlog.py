"""Logging for workflow jobs: everything a job says goes to its Snakemake log file."""

from __future__ import annotations

import contextlib
import logging
import sys
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO


@contextlib.contextmanager
def job_log(path: str | Path | None) -> Iterator[TextIO]:
    """Send ``logging`` output (and the progress bars written to the yielded stream) to
    ``path``; an exception is written there with its traceback, then re-raised so
    Snakemake reports the job as failed and prints the message too."""
    stream: TextIO = open(path, "w", buffering=1) if path else sys.stderr  # noqa: SIM115
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield stream
    except BaseException as error:
        stream.write(f"ERROR: {error}\n{traceback.format_exc()}")
        raise
    finally:
        root.removeHandler(handler)
        if stream is not sys.stderr:
            stream.close()
