"""The ``claims:`` config block: :class:`ClaimSettings` and the defaults of its keys.

Standard library only: :mod:`weightzoo.config` takes the defaults from here while
Snakemake builds the DAG, which must not load numpy, pandas or scipy.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields


@dataclass(frozen=True)
class ClaimSettings:
    """The ``claims:`` config block (defaults documented in config/config.yaml)."""

    min_trials: int = 10  # fewest trials per group (or per correlation) to test at all
    permutations: int = 4999  # label permutations per p-value
    bootstrap: int = 999  # bootstrap resamples per confidence interval
    alpha: float = 0.05  # BH false discovery rate of a "supported"/"contradicted" verdict
    seed: int = 0
    accuracy: str = "test"  # which final accuracy the correlations use (groups.accuracy)

    @classmethod
    def from_config(cls, claims: Mapping | None, accuracy: str = "test") -> ClaimSettings:
        known = {f.name for f in fields(cls)} - {"accuracy"}
        claims = dict(claims or {})
        unknown = set(claims) - known
        if unknown:
            raise ValueError(f"claims: unknown key(s) {sorted(unknown)}; known: {sorted(known)}")
        return cls(**claims, accuracy=accuracy)


def config_defaults() -> dict:
    """The ``claims:`` config keys with their defaults (``config.DEFAULTS`` takes them here)."""
    return {f.name: f.default for f in fields(ClaimSettings) if f.name != "accuracy"}
