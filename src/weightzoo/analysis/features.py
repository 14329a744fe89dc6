"""The features table: one row per (trial, layer, state) of an experiment.

Every analysis (claims, accuracy predictor, Figs 2-4 and 8-10) reads this table instead of
the raw weights. Columns, formulas and references: ``docs/features.md``.

* identity: :data:`IDENTITY_COLUMNS` (experiment, architecture, trial, its group and
  accuracies in percent, the layer and the state ``final`` / ``initial`` / ``epoch_<k>``,
  one per checkpoint the zoo stores, training.checkpoint_epochs); a zoo that varies its
  training adds the trial's settings, ``setting_id`` and ``hp_<name>``, after ``diverged``
  (:func:`table_columns`): identity, never features;
* features: :data:`FEATURE_COLUMNS` (floats; NaN where undefined). A trial whose weights
  or bias of a layer and state are not all finite keeps its row, with ``nonfinite`` True
  and every feature NaN;
* layer dynamics: :data:`DYNAMICS_COLUMNS` (the relative weight change recorded during
  training, weightzoo.train.dynamics), not weight statistics: kept out of FEATURE_COLUMNS.

Features are computed on the stacked ``[T, ...]`` arrays of an architecture, a chunk of
trials at a time (:data:`CHUNK_ELEMENTS` weights per chunk), so memory stays bounded
however many trials a zoo holds: :func:`features_from_file` reads each chunk straight
from the HDF5 zoo. Conv kernels ``[C, Cin, k, k]`` count as ``[C, Cin*k*k]`` matrices.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

import h5py
import numpy as np
import pandas as pd

from ..io import atomic_output
from ..train.shapes import LayerInfo, get_shapes
from ..zoo.hdf5 import (
    ArchTrials,
    Zoo,
    checkpoint_epoch,
    checkpoint_name,
    read_zoo,
    stored_checkpoints,
)
from .columns import TRIAL_IDENTITY, hparam_columns
from .spectral import SPECTRAL_COLUMNS, empty_spectral, masked_spectral_features

STATES = ("final", "initial")  # every zoo has them; checkpoints add "epoch_<k>"
QUANTILES = (0, 25, 50, 75, 100)
NEAR_ZERO = 0.1  # w_frac_near_zero counts |w| < NEAR_ZERO * w_std
CHUNK_ELEMENTS = 1 << 23  # weights per chunk (x 8 bytes per float64 temporary)

WEIGHT_COLUMNS = (
    "w_mean",
    "w_std",
    *(f"w_q{q}" for q in QUANTILES),
    "w_abs_mean",
    "w_kurtosis",
    "w_frac_near_zero",
)
BIAS_COLUMNS = ("b_mean", "b_std", *(f"b_q{q}" for q in QUANTILES))
STRENGTH_COLUMNS = (
    "strength_mean",
    "strength_std",
    "signed_strength_mean",
    "signed_strength_std",
)
MATRIX_COLUMNS = ("fro_norm", "spectral_norm", "stable_rank")
FEATURE_COLUMNS = (
    *WEIGHT_COLUMNS,
    *BIAS_COLUMNS,
    *STRENGTH_COLUMNS,
    *MATRIX_COLUMNS,
    "travel",
    "strength_median",  # added after the agreed interface (Fig. 8's ``reduce="median"``)
)
# rwc: relative weight change of the epoch that ended in this state (epoch k; the last
# epoch for final); rwc_mean: its mean over epochs 1..k. NaN for initial rows and zoos
# without dynamics (HDF5 schema 1). docs/dynamics.md.
DYNAMICS_COLUMNS = ("rwc", "rwc_mean")
ACCURACY_COLUMNS = ("final_train_acc", "final_test_acc", "max_train_acc", "max_test_acc")
IDENTITY_COLUMNS = (
    *TRIAL_IDENTITY,
    "trial",
    "seed",
    "diverged",
    "group",
    "grouped_by",
    "group_rule",
    *ACCURACY_COLUMNS,
    "layer",
    "layer_index",
    "n_nodes",
    "n_weights",
    "state",
    "nonfinite",
)
COLUMNS = (*IDENTITY_COLUMNS, *FEATURE_COLUMNS, *DYNAMICS_COLUMNS, *SPECTRAL_COLUMNS)
# the trial's varied training settings (setting_id, hp_<name>) follow this identity column
SETTINGS_AFTER = "diverged"

# A reader of one chunk of stacked weights: (arch, state, param, trials) -> [t, ...] or None
ChunkReader = Callable[[ArchTrials, str, str, slice], "np.ndarray | None"]


# ------------------------------------------------------------------ one chunk of trials


def bias_param(weight_param: str) -> str:
    """Name of the bias beside a weight: ``fc1.weight`` -> ``fc1.bias``,
    ``encoder.self_attn.in_proj_weight`` -> ``encoder.self_attn.in_proj_bias``."""
    for suffix, bias in ((".weight", ".bias"), ("_weight", "_bias")):
        if weight_param.endswith(suffix):
            return weight_param[: -len(suffix)] + bias
    raise ValueError(f"parameter {weight_param!r} is not named like a weight (*.weight, *_weight)")


def finite_trials(*arrays: np.ndarray | None) -> np.ndarray:
    """``[t]``: whether every value of each trial (axis 0) of all ``arrays`` is finite."""
    present = [a for a in arrays if a is not None]
    keep = np.ones(len(present[0]), dtype=bool)
    for a in present:
        keep &= np.isfinite(a.reshape(len(a), -1)).all(axis=1)
    return keep


def _spread(flat: np.ndarray, prefix: str) -> dict[str, np.ndarray]:
    """Mean, std (population) and quantiles 0/25/50/75/100 of each row of ``flat [t, n]``."""
    q = np.percentile(flat, QUANTILES, axis=1)  # [5, t], linear interpolation
    out = {f"{prefix}_mean": flat.mean(axis=1), f"{prefix}_std": flat.std(axis=1)}
    out.update({f"{prefix}_q{p}": q[i] for i, p in enumerate(QUANTILES)})
    return out


def node_strengths(w: np.ndarray, layer: LayerInfo, signed: bool = False) -> np.ndarray:
    """``[t, nodes]``: Σ |w| (or Σ w when ``signed``) over the layer's incoming axes.

    ``w``: ``[t, *per-trial shape]``; a node is what remains after the sum (a row of an
    ``[out, in]`` matrix, one ``Cin x k x k`` kernel of a conv)."""
    axes = tuple(a + 1 for a in layer.incoming_axes)  # +1: the leading trial axis
    values = w if signed else np.abs(w)
    return values.sum(axis=axes, dtype=np.float64).reshape(len(w), -1)


def _strengths(w: np.ndarray, bias: np.ndarray | None, layer: LayerInfo) -> dict:
    strength = node_strengths(w, layer)  # [t, nodes]
    signed = node_strengths(w, layer, signed=True)  # [t, nodes]
    if bias is not None:
        signed = signed + bias.reshape(len(bias), -1)  # La Malfa et al.: Σ_j w_ij + b_i
    return {
        "strength_mean": strength.mean(axis=1),
        "strength_std": strength.std(axis=1),
        "strength_median": np.median(strength, axis=1),
        "signed_strength_mean": signed.mean(axis=1),
        "signed_strength_std": signed.std(axis=1),
    }


def _matrix_norms(w: np.ndarray) -> dict[str, np.ndarray]:
    """Frobenius and spectral norm, stable rank of each trial's ``[out, rest]`` matrix.

    The spectral norm is the square root of the largest eigenvalue of the Gram matrix of
    the shorter side (``W Wᵀ`` or ``Wᵀ W``, batched ``torch.linalg.eigvalsh``): the same
    number as ``torch.linalg.svdvals(W)[0]`` (tests check it), measured 10x faster on a
    1000 x 3072 layer (docs/features.md, "Speed and memory")."""
    # imported here: the many jobs that read feature columns or trials (figure data,
    # predictor, claims) never compute norms, and torch costs each of them seconds to import
    import torch

    mats = torch.from_numpy(np.ascontiguousarray(w, dtype=np.float64)).flatten(2)  # [t, out, in]
    fro = torch.linalg.matrix_norm(mats, ord="fro")  # [t]
    gram = mats @ mats.mT if mats.shape[1] <= mats.shape[2] else mats.mT @ mats  # [t, k, k]
    top = torch.linalg.eigvalsh(gram)[:, -1]  # [t], eigenvalues come ascending
    spectral = top.clamp(min=0).sqrt()  # rounding can leave a zero matrix at -0.0
    with np.errstate(invalid="ignore", divide="ignore"):  # all-zero matrix: 0/0
        stable_rank = (fro**2 / spectral**2).numpy()
    return {"fro_norm": fro.numpy(), "spectral_norm": spectral.numpy(), "stable_rank": stable_rank}


def excess_kurtosis(flat: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """``[t]``: m4 / m2² - 3 of each row (Fisher, biased: ``scipy.stats.kurtosis``'s
    default, which tests compare against); NaN for constant rows. Computed here from one
    centred copy: scipy's version took 0.6 s per 3 M weights."""
    centred = flat - mean[:, None]  # [t, n]
    np.square(centred, out=centred)
    m2 = centred.mean(axis=1)
    m4 = np.square(centred, out=centred).mean(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return m4 / m2**2 - 3.0


def _travel(flat: np.ndarray, initial: np.ndarray) -> np.ndarray:
    """``[t]``: ‖W − W₀‖_F / ‖W₀‖_F per trial (``flat`` = W as ``[t, n]`` float64); NaN
    where W₀ is not finite."""
    moved = initial.reshape(len(initial), -1).astype(np.float64)  # [t, n], W0 for now
    start_norm = np.linalg.norm(moved, axis=1)
    np.subtract(flat, moved, out=moved)  # in place: one float64 copy, not three
    with np.errstate(invalid="ignore", divide="ignore"):
        travel = np.linalg.norm(moved, axis=1) / start_norm
    travel[~finite_trials(initial)] = np.nan
    return travel


def chunk_features(
    w: np.ndarray,
    bias: np.ndarray | None,
    layer: LayerInfo,
    initial: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Every feature of :data:`FEATURE_COLUMNS` for a chunk of trials, each ``[t]``.

    ``w``: weights ``[t, *shape]`` (all finite), ``bias``: ``[t, nodes]`` or None (bias
    features NaN), ``initial``: the same trials' initial weights for ``travel`` (None:
    travel NaN). A trial with non-finite ``initial`` gets a NaN travel.
    """
    t = len(w)
    flat = w.reshape(t, -1).astype(np.float64)  # [t, n]
    out = _spread(flat, "w")
    abs_w = np.abs(flat)  # [t, n]
    out["w_abs_mean"] = abs_w.mean(axis=1)
    out["w_kurtosis"] = excess_kurtosis(flat, out["w_mean"])
    out["w_frac_near_zero"] = (abs_w < NEAR_ZERO * out["w_std"][:, None]).mean(axis=1)
    del abs_w
    if bias is not None:
        out.update(_spread(bias.reshape(t, -1).astype(np.float64), "b"))
    else:
        out.update({c: np.full(t, np.nan) for c in BIAS_COLUMNS})
    out.update(_strengths(w, bias, layer))
    out.update(_matrix_norms(w))
    out["travel"] = np.full(t, np.nan) if initial is None else _travel(flat, initial)
    return {c: np.asarray(out[c], dtype=np.float64) for c in FEATURE_COLUMNS}


def _masked_chunk_features(w, bias, layer, initial) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """:func:`chunk_features` on the finite trials of a chunk, NaN rows for the others."""
    finite = finite_trials(w, bias)
    feats = {c: np.full(len(w), np.nan) for c in FEATURE_COLUMNS}
    if finite.any():
        pick = lambda a: None if a is None else a[finite]  # noqa: E731
        for c, values in chunk_features(w[finite], pick(bias), layer, pick(initial)).items():
            feats[c][finite] = values
    return feats, ~finite


# ------------------------------------------------------------- one layer, all its trials


def trial_chunks(n_trials: int, per_trial: int, chunk_elements: int | None = None) -> list[slice]:
    """Slices of trials holding about ``chunk_elements`` weights together (at least one)."""
    step = max(1, (chunk_elements or CHUNK_ELEMENTS) // max(1, per_trial))
    return [slice(i, min(i + step, n_trials)) for i in range(0, n_trials, step)]


def _first_trial(a: ArchTrials, layer: LayerInfo, state: str, read: ChunkReader) -> np.ndarray:
    """The first trial's weights ``[1, ...]`` of ``layer`` in ``state``, or a clear error."""
    first = read(a, state, layer.param, slice(0, 1))
    if first is None:
        how = (
            "list the epoch in training.checkpoint_epochs and retrain"
            if checkpoint_epoch(state) is not None
            else "rebuild the zoo with this weightzoo version"
        )
        raise ValueError(
            f"architecture {a.arch_name}: no {state} weights {layer.param!r} in the zoo; {how}"
        )
    return first


def layer_state_features(
    a: ArchTrials,
    layer: LayerInfo,
    state: str,
    read: ChunkReader,
    chunk_elements: int | None = None,
    spectral: bool = True,
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Features ``{column: [T]}`` (:data:`FEATURE_COLUMNS`, and WeightWatcher's
    :data:`~.spectral.SPECTRAL_COLUMNS`, status ``off`` unless ``spectral``) and the
    ``nonfinite`` flags ``[T]`` of one layer in one state, for all trials of ``a``,
    computed chunk by chunk."""
    first = _first_trial(a, layer, state, read)
    per_trial = int(np.prod(first.shape[1:], dtype=np.int64))
    parts, flags = [], []
    for chunk in trial_chunks(a.n_trials, per_trial, chunk_elements):
        w = read(a, state, layer.param, chunk)
        bias = read(a, state, bias_param(layer.param), chunk)
        initial = read(a, "initial", layer.param, chunk) if state != "initial" else None
        feats, nonfinite = _masked_chunk_features(w, bias, layer, initial)
        if spectral:
            feats.update(masked_spectral_features(w, ~nonfinite, layer))
        else:
            feats.update(empty_spectral(len(w), "off"))
        parts.append(feats)
        flags.append(nonfinite)
    joined = {
        c: np.concatenate([p[c] for p in parts]) for c in (*FEATURE_COLUMNS, *SPECTRAL_COLUMNS)
    }
    return joined, np.concatenate(flags)


# ------------------------------------------------------------------------ the table


def _trial_identity(zoo: Zoo, groups: pd.DataFrame) -> pd.DataFrame:
    """One row per trial of ``zoo`` (architecture order, then trial id) with its group."""
    table = zoo.trials_table()
    arch_index = {a.arch_name: i for i, a in enumerate(zoo.archs)}
    table.insert(4, "arch_index", table["arch"].map(arch_index))
    mine = groups[groups["experiment"] == zoo.experiment] if "experiment" in groups else groups
    keys = ["arch", "trial_id"]
    if mine.duplicated(keys).any():
        raise ValueError(f"groups of {zoo.experiment}: a trial (arch, trial_id) is listed twice")
    wanted = {f"{c}_pct": c for c in ACCURACY_COLUMNS}
    looked_up = mine.loc[:, [*keys, "group", "grouped_by", *wanted]].rename(columns=wanted)
    looked_up["group_rule"] = mine.get("group_rule", "bands")  # an older groups file: bands
    table = table.drop(columns=[c for c in table if c.startswith(("final_", "max_"))])
    paired = table.merge(looked_up, on=keys, how="left", validate="one_to_one")
    missing = paired["group"].isna()
    if missing.any():
        first = paired.loc[missing, keys].iloc[0].tolist()
        raise ValueError(
            f"groups of {zoo.experiment}: {int(missing.sum())} trial(s) have no group "
            f"(first: arch {first[0]}, trial_id {first[1]}); regenerate the groups file "
            "from this zoo"
        )
    paired["trial"] = np.arange(len(paired))
    return paired.drop(columns=["diverged_epoch"])


def n_nodes(shape: Sequence[int], layer: LayerInfo) -> int:
    """Nodes of a layer whose per-trial weight tensor has ``shape``."""
    kept = [n for axis, n in enumerate(shape) if axis not in layer.incoming_axes]
    return int(np.prod(kept, dtype=np.int64))


def state_epoch(state: str, epochs: int) -> int:
    """Epochs trained at ``state``: 0 (initial), k (epoch_k), all (final)."""
    if state == "initial":
        return 0
    return epochs if state == "final" else checkpoint_epoch(state)


def dynamics_features(a: ArchTrials, param: str, state: str) -> dict[str, np.ndarray]:
    """:data:`DYNAMICS_COLUMNS` ``{column: [T]}`` of one layer in one state."""
    rwc = a.dynamics.get(param, {}).get("rwc")  # [T, E]
    k = 0 if rwc is None else state_epoch(state, rwc.shape[1])
    if k == 0:
        return {c: np.full(a.n_trials, np.nan) for c in DYNAMICS_COLUMNS}
    done = rwc[:, :k].astype(np.float64)  # [T, k]
    return {"rwc": done[:, -1], "rwc_mean": done.mean(axis=1)}


def _arch_rows(zoo, a, trials, states, read, chunk_elements, spectral) -> list[pd.DataFrame]:
    blocks = []
    for index, layer in enumerate(get_shapes(zoo.model).layers(a.arch)):
        shape = _first_trial(a, layer, states[0], read).shape[1:]
        for state in states:
            # travel: NaN on initial rows (layer_state_features reads W0 for the others)
            feats, nonfinite = layer_state_features(a, layer, state, read, chunk_elements, spectral)
            feats.update(dynamics_features(a, layer.param, state))
            block = trials.assign(
                layer=layer.label,
                layer_index=index,
                n_nodes=n_nodes(shape, layer),
                n_weights=int(np.prod(shape)),
                state=state,
                nonfinite=nonfinite,
                **feats,
            )
            blocks.append(block)
    return blocks


def default_states(checkpoint_epochs, has_initial: bool = True) -> tuple[str, ...]:
    """final, initial, then epoch_<k> for each stored checkpoint, ascending. A zoo without
    initial weights (an imported one whose source kept only the trained weights) has no
    initial rows (``has_initial`` False)."""
    first = STATES if has_initial else STATES[:1]
    return (*first, *(checkpoint_name(k) for k in sorted(checkpoint_epochs)))


def table_columns(settings: Sequence[str] = ()) -> list[str]:
    """The table's columns: :data:`COLUMNS` with the zoo's setting columns ``settings``
    (``setting_id``, ``hp_<name>``; none for fixed settings) after ``diverged``."""
    at = COLUMNS.index(SETTINGS_AFTER) + 1
    return [*COLUMNS[:at], *settings, *COLUMNS[at:]]


def _features(
    zoo: Zoo, groups, states, read: ChunkReader, chunk_elements, spectral: bool = True
) -> pd.DataFrame:
    states = tuple(states)
    unknown = sorted(s for s in states if s not in STATES and checkpoint_epoch(s) is None)
    if unknown or not states:
        raise ValueError(f"states must be among {STATES} or epoch_<k>, got {list(states)}")
    identity = _trial_identity(zoo, groups)
    blocks = []
    for a in zoo.archs:
        trials = identity[identity["arch"] == a.arch_name].reset_index(drop=True)
        blocks += _arch_rows(zoo, a, trials, states, read, chunk_elements, spectral)
    settings = hparam_columns(identity.columns)
    df = pd.concat(blocks, ignore_index=True).loc[:, table_columns(settings)]
    order = df["state"].map({s: i for i, s in enumerate(states)})
    df = df.assign(_order=order).sort_values(
        ["arch_index", "trial_id", "layer_index", "_order"], kind="stable"
    )
    return df.drop(columns="_order").reset_index(drop=True)


def _read_memory(a: ArchTrials, state: str, param: str, trials: slice):
    try:
        arr = a.weights(state).get(param)
    except KeyError:  # a checkpoint not loaded
        return None
    return None if arr is None else arr[trials]


def zoo_features(
    zoo: Zoo,
    groups: pd.DataFrame,
    states=None,
    chunk_elements: int | None = None,
    spectral: bool = True,
) -> pd.DataFrame:
    """The features table of an in-memory zoo (see the module docstring).

    ``groups``: the experiment's groups file (:func:`weightzoo.analysis.groups.read_groups_csv`;
    rows of other experiments are ignored); ``states``: among ``final``, ``initial`` and
    ``epoch_<k>`` (default: final, initial and every checkpoint loaded in the zoo);
    ``chunk_elements``: weights per chunk (default :data:`CHUNK_ELEMENTS`); ``spectral``:
    compute WeightWatcher's columns (:mod:`.spectral`; else status ``off``)."""
    if states is None:
        first = zoo.archs[0] if zoo.archs else None
        states = default_states(
            first.checkpoint_epochs if first else (), first is None or bool(first.initial)
        )
    return _features(zoo, groups, states, _read_memory, chunk_elements, spectral)


def features_from_file(
    zoo_path: str | os.PathLike,
    groups: pd.DataFrame,
    states=None,
    chunk_elements: int | None = None,
    spectral: bool = True,
) -> pd.DataFrame:
    """:func:`zoo_features` of a zoo file, reading one chunk of trials at a time from the
    HDF5 file: memory stays near one chunk's worth however large the zoo. ``states``
    default: final, initial and every checkpoint the file stores."""
    zoo = read_zoo(zoo_path, weights=())  # trials, metrics and dynamics only
    with h5py.File(zoo_path, "r") as f:
        if states is None:
            first = next(iter(f["archs"].values()), None)
            states = default_states(
                () if first is None else stored_checkpoints(first),
                first is None or "weights/initial" in first,
            )

        def read(a: ArchTrials, state: str, param: str, trials: slice):
            data = f.get(f"archs/{a.arch_name}/weights/{state}/{param}")
            return None if data is None else data[trials]

        return _features(zoo, groups, states, read, chunk_elements, spectral)


# ----------------------------------------------------------------------------- files


def write_features(df: pd.DataFrame, path: str | os.PathLike) -> None:
    """Write the table as parquet, atomically (temporary name, then rename)."""
    check_columns(df, path)
    with atomic_output(path) as tmp:
        df.to_parquet(tmp, index=False)


def read_features(path: str | os.PathLike) -> pd.DataFrame:
    """Read a features table written by :func:`write_features`."""
    df = pd.read_parquet(path)
    check_columns(df, path)
    return df


def check_columns(df: pd.DataFrame, source) -> None:
    missing = [c for c in COLUMNS if c not in df]
    if missing:
        raise ValueError(
            f"{source}: not a features table, columns {missing} missing; rebuild it with "
            "`snakemake results/features/<experiment>.parquet`"
        )
