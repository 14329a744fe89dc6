"""Import zoos trained elsewhere into a weightzoo zoo file (``docs/import.md``).

Three source formats (:data:`FORMATS`): a checkpoint folder (one state dict per trial and
a CSV naming each trial's file and accuracy), the Small CNN Zoo layout (one weight matrix
and its metrics table) and the Model Zoos layout (one folder per model with its
checkpoints and ``result.json``). Each reader yields trials one at a time
(:class:`~.records.TrialRecord`); :mod:`.writer` streams them into the zoo HDF5 of
``docs/hdf5.md`` (model ``generic``) with the provenance of the source, holding at most a
chunk of trials' weights in memory.

Modules: :mod:`.sources` (the format names and the files each reads; standard library
only, Snakemake plans with it), :mod:`.errors`, :mod:`.statedict` (weights-only loading of
``torch.save`` and ``.safetensors`` files), :mod:`.table` (the CSV of a checkpoint folder
and accuracy units), :mod:`.records`, :mod:`.provenance`, :mod:`.writer`, one module per
format (:mod:`.checkpoints`, :mod:`.small_cnn_zoo`, :mod:`.model_zoos`) and :mod:`.export`
(a whole zoo written back as a checkpoint folder).

Kept light: importing this package imports no numpy, h5py or torch; :func:`import_zoo`
loads them when called.
"""

from __future__ import annotations

from .sources import FORMATS


def import_zoo(fmt: str, path, out, **options):
    """Read the zoo at ``path`` in format ``fmt`` and write ``out`` (a zoo HDF5 file);
    see :func:`weightzoo.zoo.importers.run.import_zoo` for the options."""
    from .run import import_zoo as run_import

    return run_import(fmt, path, out, **options)


__all__ = ["FORMATS", "import_zoo"]
