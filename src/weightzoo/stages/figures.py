"""The figure stage (rules figure, claims_figure, predict_figure, predict_early_figure):
drawing only, from analysis outputs on disk (weightzoo.figures.registry says which)."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

log = logging.getLogger(__name__)


def draw_figure(
    module: str, inputs: Mapping[str, Sequence[str]], out_pdf, out_png, number: int = 0
) -> None:
    """Draw the figure of ``weightzoo.figures.<module>`` from ``inputs`` (input name ->
    files, as the registry's ``reads`` says) as ``out_pdf`` and ``out_png``; ``number``:
    the paper's figure number (0: not in the paper)."""
    import importlib

    draw = importlib.import_module(f"weightzoo.figures.{module}").draw
    inputs = {name: [str(p) for p in paths] for name, paths in inputs.items()}
    log.info("drawing %s (Fig. %d) from %s", module, number, inputs)
    draw(inputs, str(out_pdf), str(out_png), number=number)
