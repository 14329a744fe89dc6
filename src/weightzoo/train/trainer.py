"""Batched ensemble trainer: many trials of one architecture trained as one.

Every trial owns its seed. From it come two independent streams: one draws the trial's
initial weights (on the CPU, in float64, so CPU and GPU runs start identically), the
other draws the order of the training data in every epoch. Nothing else is random, and
every tensor op works per trial (``baddbmm`` over the trial axis, per-trial loss means,
element-wise Adam), so a trial's result does not depend on which other trials share its
job: ``trials_per_job`` is an execution knob only (``tests/test_trainer.py`` checks the
bit-identity on the CPU; weightzoo.train.device states what holds on CUDA and MPS). A lone CPU
trial trains beside a shadow copy of itself (:func:`needs_shadow_trial`).

Adam over stacked ``[T, ...]`` tensors is the same as one Adam per trial: it is
element-wise and all trials share the step count.

After every epoch :meth:`EnsembleTrainer.run` records the layer dynamics
(weightzoo.train.dynamics, per trial as well) and keeps the weights of the epochs listed in
``checkpoint_epochs``.
"""

from __future__ import annotations

import logging
import math
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from tqdm import tqdm

from ..zoo.hdf5 import ArchTrials, concat_arrays, concat_nested
from .device import accumulator_dtype, keep_freed_memory_mapped, warn_if_blas_depends_on_alignment
from .dropout import TrialDropout
from .dynamics import DynamicsRecorder
from .memory import sub_ensembles
from .models import ModelFamily, Params
from .optim import adam_kind, make_trial_optimizer
from .seeds import derive_seed
from .settings import TrainSettings as TrainSettings  # re-exported (was defined here)
from .variation import EnsembleSettings, draw_init, split_by_program, subset_size, train_subset

log = logging.getLogger(__name__)


@dataclass
class TensorData:
    """A dataset on the training device: images scaled to [0, 1]."""

    x_train: Tensor  # [N, C, H, W]
    y_train: Tensor  # [N] int64
    x_test: Tensor  # [M, C, H, W]
    y_test: Tensor  # [M] int64
    num_classes: int = 10

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])

    @classmethod
    def from_arrays(
        cls,
        x_train,
        y_train,
        x_test,
        y_test,
        pixel_max,
        num_classes=10,
        *,
        dtype=torch.float32,
        device="cpu",
    ) -> TensorData:
        def images(x):
            return (
                (torch.as_tensor(np.asarray(x)).to(torch.float64) / pixel_max).to(dtype).to(device)
            )

        def labels(y):
            return torch.as_tensor(np.asarray(y), dtype=torch.int64).to(device)

        return cls(images(x_train), labels(y_train), images(x_test), labels(y_test), num_classes)


@dataclass
class TrainResult:
    """What one ensemble run produced, as numpy arrays on the host."""

    initial: dict[str, np.ndarray]  # param -> [T, ...]
    final: dict[str, np.ndarray]  # param -> [T, ...]
    metrics: dict[str, np.ndarray]  # train_loss/train_acc/test_loss/test_acc -> [T, E]
    diverged_epoch: np.ndarray  # [T] int32, -1 = never diverged
    settings: dict = field(default_factory=dict)
    checkpoints: dict[int, dict[str, np.ndarray]] = field(default_factory=dict)  # k -> param
    dynamics: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)  # param -> stat

    def first_trials(self, n: int) -> TrainResult:
        """The result of the first ``n`` trials only."""
        return self.take(slice(0, n))

    def take(self, index) -> TrainResult:
        """The trials at ``index`` (a slice or an int array), in that order."""

        def pick(arrays: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
            return {k: v[index] for k, v in arrays.items()}

        return TrainResult(
            pick(self.initial),
            pick(self.final),
            pick(self.metrics),
            self.diverged_epoch[index],
            self.settings,
            checkpoints={epoch: pick(arrays) for epoch, arrays in self.checkpoints.items()},
            dynamics={param: pick(stats) for param, stats in self.dynamics.items()},
        )

    def to_arch_trials(
        self, arch_name: str, arch: Mapping, trial_ids, seeds, hparams: Mapping | None = None
    ) -> ArchTrials:
        """The trials as a zoo stores them; ``hparams``: each trial's varied settings
        (weightzoo.train.variation.hparam_arrays), empty when none varies."""
        trials = {
            "trial_id": np.asarray(trial_ids, dtype=np.int64),
            "seed": np.asarray(seeds, dtype=np.int64),
            "diverged": self.diverged_epoch >= 0,
            "diverged_epoch": self.diverged_epoch,
        }
        return ArchTrials(
            arch_name,
            dict(arch),
            trials,
            self.metrics,
            self.initial,
            self.final,
            self.settings,
            checkpoints=self.checkpoints,
            dynamics=self.dynamics,
            hparams=dict(hparams or {}),
        )


# --------------------------------------------------------------------------- seeds
def _generator(seed: int, stream: str) -> torch.Generator:
    return torch.Generator().manual_seed(derive_seed(seed, stream))


# --------------------------------------------------------------------------- init / order
def init_params(
    family: ModelFamily,
    arch: Mapping,
    input_shape,
    num_classes: int,
    seeds: Sequence[int],
    settings: TrainSettings,
    trial_settings: EnsembleSettings | None = None,
) -> Params:
    """Initial stacked parameters ``{name: [T, *shape]}`` on the CPU, in ``settings.dtype``.

    Drawn per trial in float64 from that trial's own generator, in the family's parameter
    order, with its own init scheme and std (``trial_settings``; default: the config's one
    value), then cast: the draw does not depend on the ensemble, dtype or device."""
    ens = trial_settings or EnsembleSettings.fixed(settings, len(seeds))
    shapes = family.param_shapes(arch, input_shape, num_classes)
    per_trial = []
    for seed, std in zip(seeds, ens.init_std, strict=True):
        g = _generator(seed, "init")
        per_trial.append(
            {
                name: draw_init(
                    shape,
                    ens.init,
                    std,
                    g,
                    zero=name.endswith("bias") and settings.bias_init == "zeros",
                )
                for name, shape in shapes.items()
            }
        )
    return {
        name: torch.stack([d[name] for d in per_trial]).to(settings.torch_dtype) for name in shapes
    }


def epoch_orders(
    data_generators: Sequence[torch.Generator],
    n: int,
    subsets: Sequence[Tensor] | None = None,
) -> Tensor:
    """One epoch's data order per trial: ``[T, n]`` int64 (drawn on the CPU); with
    ``subsets`` (each trial's ``[n]`` training indices) the order runs over those."""
    orders = [torch.randperm(n, generator=g) for g in data_generators]
    if subsets is not None:
        orders = [subset[order] for subset, order in zip(subsets, orders, strict=True)]
    return torch.stack(orders)


def data_generators(seeds: Sequence[int]) -> list[torch.Generator]:
    return [_generator(seed, "data") for seed in seeds]


def batch_slices(n: int, batch_size: int) -> list[slice]:
    """Mini-batches of one epoch; the last one may be smaller (like DataLoader)."""
    return [slice(s, min(s + batch_size, n)) for s in range(0, n, batch_size)]


# --------------------------------------------------------------------------- trainer
class EnsembleTrainer:
    """Trains ``len(seeds)`` trials of one architecture together.

    Use :meth:`run` for the whole schedule; the pieces (:meth:`train_epoch`,
    :meth:`evaluate`) are public for tests and benchmarks (and run on the ``meta`` device).
    ``eval_chunk`` caps the test samples of one evaluation chunk (weightzoo.train.memory sizes it
    by the activations; ``settings.eval_chunk_mb`` bounds the input only).
    ``record_dynamics``: :meth:`run` records the per-epoch layer dynamics
    (weightzoo.train.dynamics); off only to measure what they cost (benchmarks/bench_dnn.py).
    ``trial_settings``: each trial's learning rate, weight decay, init std and dropout rate,
    and the ensemble's optimizer, activation, init scheme and train fraction
    (weightzoo.train.variation); default: the config's one value of each for every trial.
    """

    def __init__(
        self,
        family: ModelFamily,
        arch: Mapping,
        seeds: Sequence[int],
        data: TensorData,
        settings: TrainSettings,
        eval_chunk: int | None = None,
        record_dynamics: bool = True,
        trial_settings: EnsembleSettings | None = None,
    ):
        self.family, self.arch, self.data, self.settings = family, dict(arch), data, settings
        self.seeds = [int(s) for s in seeds]
        self.trial_settings = ens = trial_settings or EnsembleSettings.fixed(settings, len(seeds))
        if ens.n_trials != len(self.seeds):
            raise ValueError(f"{ens.n_trials} trials' settings for {len(self.seeds)} seeds")
        self.device = data.x_train.device
        self.eval_chunk = eval_chunk
        self.record_dynamics = record_dynamics
        # MPS has no float64: the sums of loss and accuracy are float32 there
        self.acc_dtype = accumulator_dtype(self.device)
        if self.device.type == "cpu":
            keep_freed_memory_mapped()
            warn_if_blas_depends_on_alignment()
        init = init_params(
            family, arch, data.input_shape, data.num_classes, self.seeds, settings, ens
        )
        self._transposed = frozenset(family.linear_weights(arch))
        # the tensors being trained: linear weights as [T, in, out] (ModelFamily.linear_weights)
        self.leaves: Params = {
            k: self._swap_layout(k, v.to(self.device)).contiguous().requires_grad_(True)
            for k, v in init.items()
        }
        self.optimizer = make_trial_optimizer(
            list(self.leaves.values()), ens.optimizer, ens.lr, ens.weight_decay
        )
        self.data_generators = data_generators(self.seeds)
        n = data.x_train.shape[0]
        subsets = [train_subset(_generator(s, "subset"), n, ens.train_fraction) for s in self.seeds]
        self.subsets = None if ens.train_fraction >= 1 else subsets  # each trial's [m] indices
        self.n_train = subset_size(n, ens.train_fraction)
        # keyword options of the forward pass only where they differ from the default, so a
        # family's forward without them (as before per-trial settings) still runs
        self._eval_options = {} if ens.activation == "relu" else {"activation": ens.activation}
        self._train_options = dict(self._eval_options)
        if any(ens.dropout):
            masks = [_generator(s, "dropout") for s in self.seeds]
            # the rates as drawn (float64), so float32 and float64 runs drop the same units
            self._train_options["dropout"] = TrialDropout(ens.dropout, masks)
        self._gather_buffers: dict[int, Tensor] = {}

    @property
    def n_trials(self) -> int:
        return len(self.seeds)

    def _swap_layout(self, name: str, value: Tensor) -> Tensor:
        """Between the family's layout and the trained one (a view; its own inverse): the
        linear weights' last two axes swapped, every other tensor as it is."""
        return value.transpose(1, 2) if name in self._transposed else value

    @property
    def params(self) -> Params:
        """The stacked parameters ``{name: [T, *shape]}`` in the family's layout: views of
        :attr:`leaves`, so writing into them (under ``torch.no_grad()``) changes training."""
        return {k: self._swap_layout(k, leaf) for k, leaf in self.leaves.items()}

    def snapshot(self) -> dict[str, np.ndarray]:
        return {k: v.detach().cpu().numpy().copy() for k, v in self.params.items()}

    def _gather(self, x: Tensor, idx: Tensor) -> Tensor:
        """``x[idx]`` for ``idx`` ``[T, b]`` -> ``[T, b, *x.shape[1:]]``, into a reused buffer
        (``index_select(out=)`` is several times faster than fancy indexing at many trials,
        and a persistent buffer avoids re-mapping large allocations every step)."""
        t, b = idx.shape
        flat = x.reshape(x.shape[0], -1)  # [N, F]
        buf = self._gather_buffers.get(b)
        if buf is None:
            buf = self._gather_buffers[b] = flat.new_empty((t * b, flat.shape[1]))
        torch.index_select(flat, 0, idx.reshape(-1), out=buf)
        return buf.view(t, b, *x.shape[1:])

    def train_epoch(self, progress: tqdm | None = None) -> tuple[Tensor, Tensor]:
        """One epoch for all trials; returns per-trial mean batch loss and accuracy ``[T]``,
        accumulated over the mini-batches as training sees them (Keras-style)."""
        n = self.n_train
        order = epoch_orders(self.data_generators, n, self.subsets).to(self.device)  # [T, n]
        loss_sum = torch.zeros(self.n_trials, dtype=self.acc_dtype, device=self.device)
        correct = torch.zeros(self.n_trials, dtype=torch.int64, device=self.device)
        for sl in batch_slices(n, self.settings.batch_size):
            idx = order[:, sl]  # [T, b]
            xb = self._gather(self.data.x_train, idx)  # [T, b, C, H, W]
            yb = self.data.y_train[idx]  # [T, b]
            logits = self.family.forward(
                self.params, xb, self.arch, **self._train_options
            )  # [T, b, classes]
            loss = _loss_per_trial(logits, yb)  # [T]
            self.optimizer.zero_grad(set_to_none=True)
            # Summing per-trial means gives each trial exactly its own gradient.
            loss.sum().backward()
            # a named region for benchmarks/bench_dnn.py --profile (no cost unprofiled)
            with torch.profiler.record_function("weightzoo.adam_step"):
                self.optimizer.step()
            with torch.no_grad():
                loss_sum += loss.detach().to(self.acc_dtype) * (sl.stop - sl.start)
                correct += (logits.argmax(-1) == yb).sum(1)
            if progress is not None:
                progress.update(1)
        return loss_sum / n, correct.to(self.acc_dtype) / n

    @torch.no_grad()
    def evaluate(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        """Mean loss and accuracy ``[T]`` of every trial on ``(x, y)``, in chunks
        (:func:`evaluate_params` on the trained parameters)."""
        return evaluate_params(
            self.family,
            self.params,
            self.arch,
            x,
            y,
            self.settings.eval_chunk_mb,
            self.eval_chunk,
            self._eval_options,
        )

    def run(self, progress_file=sys.stderr, desc: str = "train") -> TrainResult:
        s = self.settings
        initial = self.snapshot()
        metrics = {
            k: np.full((self.n_trials, s.epochs), np.nan, dtype=np.float32)
            for k in ("train_loss", "train_acc", "test_loss", "test_acc")
        }
        diverged_epoch = np.full(self.n_trials, -1, dtype=np.int32)
        checkpoints: dict[int, dict[str, np.ndarray]] = {}
        layers = [layer.param for layer in self.family.layers(self.arch)]
        # on the stored tensors: the statistics do not depend on the layout, and no copies
        dynamics = DynamicsRecorder(self.leaves, layers, s.epochs) if self.record_dynamics else None
        steps = s.epochs * math.ceil(self.n_train / s.batch_size)
        with tqdm(
            total=steps,
            desc=desc,
            file=progress_file,
            mininterval=10,
            ascii=True,
            unit="step",
            disable=progress_file is None,
        ) as progress:
            for epoch in range(s.epochs):
                values = dict(
                    zip(("train_loss", "train_acc"), self.train_epoch(progress), strict=True)
                )
                values.update(
                    zip(
                        ("test_loss", "test_acc"),
                        self.evaluate(self.data.x_test, self.data.y_test),
                        strict=True,
                    )
                )
                values = {k: v.cpu().numpy() for k, v in values.items()}
                newly = (diverged_epoch < 0) & ~np.isfinite(values["train_loss"])
                diverged_epoch[newly] = epoch
                for k, v in values.items():
                    metrics[k][:, epoch] = np.where(diverged_epoch >= 0, np.nan, v)
                if dynamics is not None:
                    diverged = torch.from_numpy(diverged_epoch >= 0).to(self.device)  # [T]
                    dynamics.record(self.leaves, epoch, diverged)
                if epoch + 1 in s.checkpoint_epochs:
                    checkpoints[epoch + 1] = self.snapshot()
                log.info(
                    "%s epoch %d/%d: test acc median %.4f, diverged %d/%d",
                    desc,
                    epoch + 1,
                    s.epochs,
                    float(np.nanmedian(metrics["test_acc"][:, epoch]))
                    if (diverged_epoch < 0).any()
                    else float("nan"),
                    int((diverged_epoch >= 0).sum()),
                    self.n_trials,
                )
        settings = {**s.as_dict(), "optimizer_step": adam_kind(self.optimizer)}
        return TrainResult(
            initial,
            self.snapshot(),
            metrics,
            diverged_epoch,
            settings,
            checkpoints=checkpoints,
            dynamics={} if dynamics is None else dynamics.arrays(),
        )


def _loss_per_trial(logits: Tensor, y: Tensor) -> Tensor:
    """Mean cross-entropy per trial: logits ``[T, b, C]``, y ``[T, b]`` -> ``[T]``."""
    t, b, c = logits.shape
    return (
        F.cross_entropy(logits.reshape(t * b, c), y.reshape(t * b), reduction="none")
        .view(t, b)
        .mean(1)
    )


@torch.no_grad()
def evaluate_params(
    family: ModelFamily,
    params: Params,
    arch: Mapping,
    x: Tensor,
    y: Tensor,
    eval_chunk_mb: int = 64,
    eval_chunk: int | None = None,
    options: Mapping | None = None,
) -> tuple[Tensor, Tensor]:
    """Mean loss and accuracy ``[T]`` of the stacked ``params`` on ``(x, y)``, in chunks of
    at most ``eval_chunk_mb`` of input (and ``eval_chunk`` samples): how every trial is
    evaluated after each epoch, and how weightzoo.analysis.reconstruct evaluates rebuilt
    networks. ``options``: the forward's keywords (the activation)."""
    t, n = next(iter(params.values())).shape[0], x.shape[0]
    device = x.device
    acc_dtype = accumulator_dtype(device)
    features = max(1, x[0].numel())
    chunk = max(1, (eval_chunk_mb << 20) // (t * features * x.element_size()))
    if eval_chunk is not None:
        chunk = min(chunk, eval_chunk)
    loss_sum = torch.zeros(t, dtype=acc_dtype, device=device)
    correct = torch.zeros(t, dtype=torch.int64, device=device)
    for sl in batch_slices(n, chunk):
        xb = x[sl].unsqueeze(0).expand(t, *x[sl].shape)  # [T, b, C, H, W], no copy
        yb = y[sl].unsqueeze(0).expand(t, -1)  # [T, b]
        logits = family.forward(params, xb, arch, **dict(options or {}))  # [T, b, classes]
        loss_sum += _loss_per_trial(logits, yb).to(acc_dtype) * (sl.stop - sl.start)
        correct += (logits.argmax(-1) == yb).sum(1)
    return loss_sum / n, correct.to(acc_dtype) / n


def concat_results(parts: Sequence[TrainResult]) -> TrainResult:
    """Join the results of consecutive sub-ensembles along the trial axis."""
    first = parts[0]

    def cat(key: str) -> dict[str, np.ndarray]:
        return concat_arrays([getattr(p, key) for p in parts])

    def cat_nested(key: str) -> dict:
        return concat_nested([getattr(p, key) for p in parts])

    diverged = np.concatenate([p.diverged_epoch for p in parts])
    return TrainResult(
        cat("initial"),
        cat("final"),
        cat("metrics"),
        diverged,
        first.settings,
        checkpoints=cat_nested("checkpoints"),
        dynamics=cat_nested("dynamics"),
    )


def train_trials(
    family: ModelFamily,
    arch: Mapping,
    seeds: Sequence[int],
    data: TensorData,
    settings: TrainSettings,
    progress_file=sys.stderr,
    desc="train",
    max_trials: int | None = None,
    eval_chunk: int | None = None,
    record_dynamics: bool = True,
    trial_values: Sequence[Mapping] | None = None,
) -> TrainResult:
    """Train ``seeds`` as one ensemble, or as consecutive sub-ensembles of at most
    ``max_trials`` (weightzoo.train.memory sizes them to fit the device).

    ``trial_values``: each trial's draw of the variable settings (weightzoo.train.hparams
    .sample_trial); trials whose optimizer, activation, init scheme or train fraction differ
    train in separate ensembles (weightzoo.train.variation), and the result comes back in
    the order of ``seeds``. Default: the config's one value of each setting."""
    seeds = list(seeds)
    if trial_values is None:
        programs = [list(range(len(seeds)))]
        ensembles = [EnsembleSettings.fixed(settings, len(seeds))]
    else:
        programs = split_by_program(trial_values)
        ensembles = [EnsembleSettings.from_trials([trial_values[k] for k in p]) for p in programs]
    parts = []
    for program, ens in zip(programs, ensembles, strict=True):
        label = desc if len(programs) == 1 else f"{desc} {_program_label(ens)}"
        for sl in sub_ensembles(len(program), max_trials):
            part_label = (
                label if sl == slice(0, len(program)) else f"{label} [{sl.start}:{sl.stop}]"
            )
            part = [program[k] for k in range(sl.start, sl.stop)]
            parts.append(
                _train_ensemble(
                    family,
                    arch,
                    [seeds[k] for k in part],
                    data,
                    settings,
                    _ensemble_slice(ens, sl),
                    progress_file,
                    part_label,
                    eval_chunk,
                    record_dynamics,
                )
            )
    result = concat_results(parts)
    order = np.concatenate([np.asarray(p, dtype=np.int64) for p in programs])
    return result if (order == np.arange(len(seeds))).all() else result.take(np.argsort(order))


def _train_ensemble(
    family, arch, seeds, data, settings, ens, progress_file, desc, eval_chunk, record_dynamics
) -> TrainResult:
    """One ensemble; a lone CPU trial beside a copy of itself (:func:`needs_shadow_trial`)."""
    shadowed = needs_shadow_trial(len(seeds), data.x_train.device)
    if shadowed:
        seeds, ens = seeds * 2, EnsembleSettings.from_trials([ens.trial(0)] * 2)
    trainer = EnsembleTrainer(
        family,
        arch,
        seeds,
        data,
        settings,
        eval_chunk=eval_chunk,
        record_dynamics=record_dynamics,
        trial_settings=ens,
    )
    result = trainer.run(progress_file, desc)
    return result.first_trials(1) if shadowed else result


def _ensemble_slice(ens: EnsembleSettings, sl: slice) -> EnsembleSettings:
    return EnsembleSettings.from_trials([ens.trial(k) for k in range(sl.start, sl.stop)])


def _program_label(ens: EnsembleSettings) -> str:
    return f"({ens.optimizer}, {ens.activation}, {ens.init}, train {ens.train_fraction:g})"


def needs_shadow_trial(n_trials: int, device: torch.device) -> bool:
    """Whether a lone trial must train beside a copy of itself to match its ensemble bits.

    torch multiplies a batch of one matrix as a plain gemm (the same bits as ``mm``) and two
    or more with MKL's batched gemm, which for some small transposed products (the weight
    gradient ``hᵀ @ grad`` of a 5..16-wide layer feeding a 12..20-wide one, e.g. widths
    ``[5, 20]``) sums in another order. From two trials on a trial's bits never depend on
    its ensemble (``tests/test_trainer.py``), so a lone CPU trial trains as a pair with a
    shadow copy, which costs a second trial's time only when a job trains one trial.
    """
    return n_trials == 1 and torch.device(device).type == "cpu"
