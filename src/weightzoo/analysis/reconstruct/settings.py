"""The ``reconstruct:`` config block: :class:`ReconstructSettings` and its defaults.

Standard library only: :mod:`weightzoo.config` takes the defaults from here while
Snakemake builds the DAG, which must not load numpy or torch.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields

ORDERS = ("none", "norm")  # how hidden units are ordered before fitting (docs/reconstruct.md)
DISTILL_LOSSES = ("mse", "kl")  # what the distillation phase fits (fit.distillation_loss)


@dataclass(frozen=True)
class ReconstructSettings:
    """The ``reconstruct:`` config block (every key documented in config/config.yaml)."""

    enabled: bool = True  # false: no reconstruct jobs, claim 9 untested
    experiments: tuple[str, ...] = ()  # experiments to reconstruct; empty: all of them
    # predictor sizes as compression ratios: predictor parameters / represented weights
    ratios: tuple[float, ...] = (0.05, 0.1, 0.25, 0.5)
    depth: int = 3  # hidden layers of the predictor MLP
    levels: int = 10  # frequencies of the positional encoding per coordinate
    steps: int = 2000  # Adam steps of the reconstruction phase
    lr: float = 0.01  # Adam's learning rate (cosine decay to 0 over the steps)
    batch_rows: int = 4096  # coordinates per trial and step (all of them when fewer)
    magnitude_weighted: bool = False  # NeRN's |w|-weighted MSE instead of the plain MSE
    order: str = "norm"  # none | norm: hidden units sorted by incoming-weight norm
    # steps of the distillation phase after it (0: none); on by default, as the rebuilt
    # networks keep their accuracy only with it (docs/reconstruct.md, "Why the fits failed")
    distill_steps: int = 1000
    distill_lr: float = 0.001
    distill_batch: int = 256  # training images per trial and distillation step
    # what the distillation fits: kl (the original's class probabilities: the KL divergence
    # of the softmax outputs; kept more accuracy on every zoo measured) or mse (its logits)
    distill_loss: str = "kl"
    shared_latent: int = 16  # per-trial latent code of the shared representation
    shared_ratio: float = 1.0  # its size: parameters / one network's represented weights
    shared_steps: int = 2000  # Adam steps of the shared fit (0: no shared representation)
    shared_batch_rows: int = 1024  # coordinates per trial and step of the shared fit
    claim_ratio: float = 0.1  # the ratio whose error claim 9b compares
    trials_per_chunk: int = 100  # trials fitted at once: bounds the job's memory
    # at most this many trials per architecture and accuracy group, drawn with ``seed``
    # (0: every trial): a sample where fitting every trial costs too much
    trials_per_group: int = 0
    seed: int = 0

    @classmethod
    def from_config(cls, block: Mapping | None) -> ReconstructSettings:
        block = dict(block or {})
        known = {f.name for f in fields(cls)}
        unknown = set(block) - known
        if unknown:
            raise ValueError(
                f"reconstruct: unknown key(s) {sorted(unknown)}; known: {sorted(known)}"
            )
        for key in ("experiments", "ratios"):
            if key in block:
                block[key] = tuple(block[key])
        settings = cls(**block)
        settings.check()
        return settings

    def check(self) -> None:
        if not self.ratios or any(not r > 0 for r in self.ratios):
            raise ValueError(f"reconstruct.ratios: give compression ratios > 0, got {self.ratios}")
        if self.claim_ratio not in self.ratios:
            raise ValueError(
                f"reconstruct.claim_ratio: {self.claim_ratio} is not among reconstruct.ratios "
                f"{list(self.ratios)}"
            )
        if self.trials_per_group < 0:
            raise ValueError(
                f"reconstruct.trials_per_group: 0 (every trial) or a positive count, "
                f"got {self.trials_per_group}"
            )
        for key, choices in (("distill_loss", DISTILL_LOSSES), ("order", ORDERS)):
            value = getattr(self, key)
            if value not in choices:
                raise ValueError(f"reconstruct.{key}: one of {choices}, got {value!r}")

    def as_config(self) -> dict:
        """The block as plain YAML/JSON data (lists, not tuples)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    def wants(self, experiment: str) -> bool:
        return self.enabled and (not self.experiments or experiment in self.experiments)


def config_defaults() -> dict:
    """The ``reconstruct:`` keys with their defaults (``config.DEFAULTS`` takes them here)."""
    return ReconstructSettings().as_config()
