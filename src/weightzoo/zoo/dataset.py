"""A PyTorch ``Dataset`` over zoo files, for learning on weights (weight-space learning:
NFN, DWSNets, neural graphs, ...). ``docs/dataset.md`` shows it training a predictor.

One item per trial of one or more zoo files (weightzoo's own or imported ones), in file,
architecture and trial order::

    {
        "params": {name: Tensor} (per-trial shapes, in state-dict order: ready for
                  ``module.load_state_dict``),
                  or with flat=True one Tensor [P] (the parameters flattened in that order),
        "layer_index": LongTensor [P] (flat only): the analysed layer (ModelFamily.layers,
                  input side first) each value belongs to, its weight or its bias; -1 for
                  parameters of no layer (normalisation, embeddings without a weight name),
        "param_index": LongTensor [P] (flat only): the parameter's position in the state dict,
        "test_acc": Tensor () float32: the final test accuracy (fraction; NaN if unknown),
        <metric>: the other final metrics asked for (metrics=...),
        "trial_id": int, "arch": str, "experiment": str, "index": int (the item's position),
        "hparams": {name: float | int | str} the trial's varied training settings
                  (setting_id among them; {} where the zoo varies none),
    }

Weights are read from the HDF5 file when an item is asked for (one open file per process,
so ``DataLoader`` workers each open their own), or all at once with ``in_memory=True``.
:meth:`ZooDataset.split` splits by trial or by architecture, reproducibly (a seeded hash
of each trial's or architecture's name ranks them: the same files and seed give the same
split on any machine, whatever the order the files are listed in).
:func:`pad_collate` batches flat items of different lengths (several architectures).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import torch
from torch.utils.data import Dataset, Subset

from ..train.models import get_family
from .hdf5 import METRICS, WEIGHT_SETS, checkpoint_epoch, read_zoo

SPLITS = ("trial", "arch")


@dataclass(frozen=True)
class ArchLayout:
    """How one architecture's parameters flatten: names, shapes, and each parameter's layer."""

    experiment: str
    arch: str
    names: tuple[str, ...]
    shapes: tuple[tuple[int, ...], ...]
    layer_of: tuple[int, ...]  # per parameter: its layer's index, -1 for none

    @property
    def sizes(self) -> list[int]:
        return [int(np.prod(s, dtype=np.int64)) for s in self.shapes]

    def flat_index(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(layer_index [P], param_index [P])`` of the flattened parameters."""
        sizes = torch.tensor(self.sizes)
        param = torch.repeat_interleave(torch.arange(len(self.names)), sizes)
        layer = torch.repeat_interleave(torch.tensor(self.layer_of, dtype=torch.int64), sizes)
        return layer, param


def _layer_of(model: str, arch: dict, names: Sequence[str]) -> tuple[int, ...]:
    """Per parameter, the index of the analysed layer it belongs to (weight or bias)."""
    from ..analysis.features import bias_param

    owner: dict[str, int] = {}
    for index, layer in enumerate(get_family(model).layers(arch)):
        owner[layer.param] = index
        with contextlib.suppress(ValueError):  # a weight not named like one: no bias
            owner.setdefault(bias_param(layer.param), index)
    return tuple(owner.get(name, -1) for name in names)


def state_dict_order(model: str, dataset: str, arch: dict, stored: Sequence[str]) -> tuple:
    """``stored`` (HDF5 lists a group's parameters by name) in state-dict order: an imported
    architecture's own list, a weightzoo family's ``param_shapes``; names it does not give
    follow in stored order."""
    from ..data.catalog import IMAGE_SHAPES, NUM_CLASSES
    from ..train.shapes import get_shapes

    if "parameters" in arch:
        order = [str(name) for name, _ in arch["parameters"]]
    else:
        try:
            shapes = get_shapes(model).param_shapes(arch, IMAGE_SHAPES[dataset], NUM_CLASSES)
        except (KeyError, ValueError):  # a dataset weightzoo does not know: stored order
            shapes = {}
        order = list(shapes)
    known = [n for n in order if n in stored]
    return (*known, *(n for n in stored if n not in known))


def _key_rank(keys: Sequence[str], seed: int) -> np.ndarray:
    """A seeded, order-free ranking of ``keys``: sha256 of ``seed/key``."""
    digests = [hashlib.sha256(f"{seed}/{k}".encode()).hexdigest() for k in keys]
    return np.argsort(np.asarray(digests), kind="stable")


class ZooDataset(Dataset):
    """Trials of zoo files as items (the module docstring gives an item's keys).

    ``paths``: one zoo file or several; ``weights``: ``final`` (default), ``initial`` or a
    stored checkpoint ``epoch_<k>``; ``flat``: one vector per trial with its layer and
    parameter index, else a dict of tensors; ``metrics``: the final metrics each item
    carries (``test_acc`` always); ``archs``: keep only these architectures (names);
    ``in_memory``: read every trial's weights now instead of item by item; ``dtype``: of
    the weights (default float32)."""

    def __init__(
        self,
        paths: str | os.PathLike | Sequence[str | os.PathLike],
        *,
        weights: str = "final",
        flat: bool = False,
        metrics: Sequence[str] = ("test_acc",),
        archs: Sequence[str] | None = None,
        in_memory: bool = False,
        dtype: torch.dtype = torch.float32,
    ):
        if isinstance(paths, str | os.PathLike):
            paths = [paths]
        if not paths:
            raise ValueError("ZooDataset: give at least one zoo file")
        if weights not in WEIGHT_SETS and checkpoint_epoch(weights) is None:
            raise ValueError(f"weights must be final, initial or epoch_<k>, got {weights!r}")
        unknown = [m for m in metrics if m not in METRICS]
        if unknown:
            raise ValueError(f"metrics {unknown} unknown; a zoo stores {list(METRICS)}")
        self.paths = [Path(p) for p in paths]
        self.weights, self.flat, self.dtype = weights, flat, dtype
        self.metrics = tuple(dict.fromkeys(("test_acc", *metrics)))
        self.layouts: dict[tuple[int, str], ArchLayout] = {}
        self._rows: list[tuple[int, str, int]] = []  # (file, arch, position in the arch)
        self._meta: list[dict] = []
        for f, path in enumerate(self.paths):
            self._add_zoo(f, path, archs)
        if not self._rows:
            raise ValueError(
                f"ZooDataset: no trials in {[str(p) for p in self.paths]}"
                + (f" of architectures {list(archs)}" if archs is not None else "")
            )
        self._files: dict[int, h5py.File] = {}
        self._pid = os.getpid()
        self._loaded = self._load_all() if in_memory else None

    # ---------------------------------------------------------------- reading

    def _add_zoo(self, f: int, path: Path, archs) -> None:
        zoo = read_zoo(path, weights=())
        with h5py.File(path, "r") as h5:
            for a in zoo.archs:
                if archs is not None and a.arch_name not in archs:
                    continue
                group = h5.get(f"archs/{a.arch_name}/weights/{self.weights}")
                if group is None:
                    raise ValueError(
                        f"{path}: architecture {a.arch_name} stores no {self.weights} weights; "
                        f"stored: {list(h5[f'archs/{a.arch_name}/weights'])}"
                    )
                names = state_dict_order(zoo.model, zoo.dataset, a.arch, list(group))
                shapes = tuple(tuple(group[n].shape[1:]) for n in names)
                layer_of = _layer_of(zoo.model, a.arch, names)
                self.layouts[f, a.arch_name] = ArchLayout(
                    zoo.experiment, a.arch_name, names, shapes, layer_of
                )
                self._add_trials(f, zoo.experiment, a)

    def _add_trials(self, f: int, experiment: str, a) -> None:
        for k in range(a.n_trials):
            self._rows.append((f, a.arch_name, k))
            self._meta.append(
                {
                    "trial_id": int(a.trials["trial_id"][k]),
                    "arch": a.arch_name,
                    "experiment": experiment,
                    **{m: _final(a.metrics.get(m), k) for m in self.metrics},
                    "hparams": {name: _plain(v[k]) for name, v in a.hparams.items()},
                }
            )

    def _file(self, f: int) -> h5py.File:
        if self._pid != os.getpid():  # a DataLoader worker: its own handles
            self._files, self._pid = {}, os.getpid()
        if f not in self._files:
            self._files[f] = h5py.File(self.paths[f], "r")
        return self._files[f]

    def _read(self, f: int, arch: str, k: int) -> dict[str, np.ndarray]:
        group = self._file(f)[f"archs/{arch}/weights/{self.weights}"]
        return {name: group[name][k] for name in self.layouts[f, arch].names}

    def _load_all(self) -> list[dict[str, np.ndarray]]:
        loaded = []
        for (f, arch), layout in self.layouts.items():
            group = self._file(f)[f"archs/{arch}/weights/{self.weights}"]
            stacked = {name: group[name][()] for name in layout.names}
            loaded += [
                ((f, arch, k), {n: v[k] for n, v in stacked.items()})
                for k in range(len(next(iter(stacked.values()))))
            ]
        by_row = dict(loaded)
        return [by_row[row] for row in self._rows]

    # ---------------------------------------------------------------- items

    def __len__(self) -> int:
        return len(self._rows)

    def __getitem__(self, index: int) -> dict:
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} trials")
        index = index % len(self)
        f, arch, k = self._rows[index]
        params = self._loaded[index] if self._loaded is not None else self._read(f, arch, k)
        meta = self._meta[index]
        item = {
            "trial_id": meta["trial_id"],
            "arch": arch,
            "experiment": meta["experiment"],
            "index": index,
            "hparams": dict(meta["hparams"]),
            **{m: torch.tensor(meta[m], dtype=torch.float32) for m in self.metrics},
        }
        tensors = {n: torch.as_tensor(np.asarray(v), dtype=self.dtype) for n, v in params.items()}
        if self.flat:
            layer, param = self.layouts[f, arch].flat_index()
            item["params"] = torch.cat([t.reshape(-1) for t in tensors.values()])
            item["layer_index"], item["param_index"] = layer, param
        else:
            item["params"] = tensors
        return item

    def layout(self, index: int) -> ArchLayout:
        """The parameter layout (names, shapes, layers) of item ``index``'s architecture."""
        f, arch, _ = self._rows[index]
        return self.layouts[f, arch]

    @property
    def archs(self) -> list[str]:
        """The architectures' names, in item order."""
        return list(dict.fromkeys(arch for _, arch, _ in self._rows))

    @property
    def n_layers(self) -> int:
        """The most analysed layers of any architecture (``layer_index`` < this)."""
        return max((max(lay.layer_of, default=-1) + 1 for lay in self.layouts.values()), default=0)

    def targets(self, metric: str = "test_acc") -> np.ndarray:
        """``[N]`` one final metric of every item (no weights read)."""
        return np.array([m[metric] for m in self._meta], dtype=np.float64)

    # ---------------------------------------------------------------- splits

    def split(
        self, by: str = "trial", test_fraction: float = 0.2, seed: int = 0
    ) -> tuple[Subset, Subset]:
        """``(train, test)`` subsets, reproducibly. ``by="trial"``: ``test_fraction`` of the
        trials (rounded, at least one); ``by="arch"``: that fraction of the architectures
        (at least one held out and one kept), all their trials together, to test on
        architectures never seen in training. Trials and architectures are ranked by a
        seeded hash of their names (``experiment/arch/trial_id``; ``arch``), so the split
        depends on the seed and the zoo's contents only."""
        if by not in SPLITS:
            raise ValueError(f"split by one of {SPLITS}, got {by!r}")
        if not 0 < test_fraction < 1:
            raise ValueError(f"test_fraction must lie in (0, 1), got {test_fraction}")
        if by == "trial":
            keys = [f"{m['experiment']}/{m['arch']}/{m['trial_id']}" for m in self._meta]
            n_test = min(len(keys) - 1, max(1, round(test_fraction * len(keys))))
            test = np.zeros(len(keys), dtype=bool)
            test[_key_rank(keys, seed)[:n_test]] = True
        else:
            names = sorted(self.archs)
            if len(names) < 2:
                raise ValueError(
                    f"split by arch needs two architectures or more; the dataset has {names}"
                )
            n_test = min(len(names) - 1, max(1, round(test_fraction * len(names))))
            held_out = {names[i] for i in _key_rank(names, seed)[:n_test]}
            test = np.array([m["arch"] in held_out for m in self._meta])
        return Subset(self, np.flatnonzero(~test).tolist()), Subset(
            self, np.flatnonzero(test).tolist()
        )

    def __getstate__(self):  # DataLoader workers: no open h5py files across processes
        state = dict(self.__dict__)
        state["_files"] = {}
        return state


def _final(values: np.ndarray | None, k: int) -> float:
    """The last finite-or-NaN value of row ``k`` of a ``[T, E]`` metric (NaN if absent)."""
    if values is None or values.shape[1] == 0:
        return float("nan")
    return float(values[k, -1])


def _plain(value):
    """A numpy scalar as a Python int, float or str."""
    return value.item() if hasattr(value, "item") else value


def pad_collate(items: Sequence[dict]) -> dict:
    """Batch flat items of different lengths: ``params`` ``[B, P_max]`` zero-padded,
    ``mask`` ``[B, P_max]`` (True where a value is real), ``layer_index`` and
    ``param_index`` padded with -1; metrics stacked; the rest as lists."""
    if not items or not torch.is_tensor(items[0]["params"]):
        raise ValueError("pad_collate batches flat items: ZooDataset(..., flat=True)")
    longest = max(len(it["params"]) for it in items)

    def pad(key: str, fill) -> torch.Tensor:
        out = torch.full((len(items), longest), fill, dtype=items[0][key].dtype)
        for i, it in enumerate(items):
            out[i, : len(it[key])] = it[key]
        return out

    batch = {
        "params": pad("params", 0),
        "mask": _mask(items, longest),
        "layer_index": pad("layer_index", -1),
        "param_index": pad("param_index", -1),
    }
    for key, value in items[0].items():
        if key in batch:
            continue
        values = [it[key] for it in items]
        batch[key] = torch.stack(values) if torch.is_tensor(value) else values
    return batch


def _mask(items: Sequence[dict], longest: int) -> torch.Tensor:
    mask = torch.zeros((len(items), longest), dtype=torch.bool)
    for i, it in enumerate(items):
        mask[i, : len(it["params"])] = True
    return mask
