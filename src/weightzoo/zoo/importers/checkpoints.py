"""A checkpoint folder: one state dict per trial (``torch.save`` or ``.safetensors``),
optional per-epoch files, and a CSV naming each trial's files and accuracies
(:mod:`.table`; ``docs/import.md``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from .errors import ZooImportError
from .provenance import relative
from .records import SourcePlan, TrialRecord
from .sources import CHECKPOINTS, DEFAULT_CSV
from .statedict import load_state_dict
from .table import read_table


def plan(path: Path, csv: Path | None = None, accuracy_unit: str | None = None) -> SourcePlan:
    if not path.is_dir():
        raise ZooImportError(
            f"{path}: not a folder; a checkpoint folder holds one state dict per trial "
            f"and {DEFAULT_CSV} (or a CSV named with --csv)"
        )
    csv = csv or path / DEFAULT_CSV
    table = read_table(csv, accuracy_unit)
    source = SourcePlan(
        fmt=CHECKPOINTS,
        path=str(path),
        epochs=table.epochs,
        n_trials=len(table),
        trials=lambda: iter(()),
        hparam_names=table.hparam_names,
        weight_sets=table.weight_sets,
        accuracy_unit=table.accuracy_unit,
        metadata_files=[csv],
    )

    def trials() -> Iterator[TrialRecord]:
        for row in table.rows():
            weights = {}
            for which, file in row.files.items():
                state, digest = load_state_dict(file, f"{row.where} ({which})")
                source.content.add(relative(file, path), digest)
                weights[which] = state
            yield TrialRecord(
                where=f"{row.where} ({row.files['final'].name})",
                weights=weights,
                metrics=row.metrics,
                label=row.label,
                trial_id=row.trial_id,
                seed=row.seed,
                diverged=row.diverged,
                diverged_epoch=row.diverged_epoch,
                hparams=row.hparams,
            )

    source.trials = trials
    return source
