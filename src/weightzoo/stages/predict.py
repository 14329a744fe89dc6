"""The prediction stages (rules predict, predict_early, predict_table): accuracy and
fate predicted from weights."""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)


def predict(features_path, results_path, oof_path, arch_path=None, reconstruct_path=None) -> None:
    """Accuracy predicted from one experiment's features table; with ``arch_path``, also
    Kendall's τ of the held-out predictions per architecture (``<experiment>.arch.csv``);
    with ``reconstruct_path`` (its reconstruction table), also from the trials'
    reconstruction errors (docs/reconstruct.md)."""
    import pandas as pd

    from ..analysis.predict.accuracy import arch_taus, predict_experiment
    from ..analysis.predict.files import write_arch_taus, write_predictions

    reconstruction = None
    if reconstruct_path is not None:
        from ..analysis.reconstruct.summary import read_table, trial_features

        reconstruction = trial_features(read_table(reconstruct_path))
    features = pd.read_parquet(features_path)
    results, oof = predict_experiment(features, reconstruction=reconstruction)
    write_predictions(results, oof, results_path, oof_path)
    if arch_path is not None:
        write_arch_taus(arch_taus(oof), arch_path)
    for _, r in results.iterrows():
        log.info(
            "%s %s %s: %s",
            r["features"],
            r["regressor"],
            r["validation"],
            r["reason"] if r["status"] != "ok" else f"R² {r['r2']:.3f}, τ {r['kendall_tau']:.3f}",
        )


def predict_early(features_path, out_path, epochs: int | None = None) -> None:
    """How early a trial's fate shows: ``<experiment>.early.csv``."""
    import pandas as pd

    from ..analysis.predict.early import predict_early as fate_by_state
    from ..analysis.predict.files import write_early

    table = fate_by_state(pd.read_parquet(features_path), epochs)
    write_early(table, out_path)
    for _, r in table[table["status"] == "ok"].iterrows():
        metric = "roc_auc" if r["target"] == "high" else "r2"
        log.info(
            "%s %s %s %s: %s %.3f",
            r["state"],
            r["target"],
            r["estimator"],
            r["validation"],
            metric,
            r[metric],
        )


def predict_table(result_paths, md_path) -> None:
    """Every experiment's scores in one Markdown table (``predict.md``)."""
    from ..analysis.predict.files import read_results
    from ..analysis.predict.markdown import write_markdown

    write_markdown([read_results(path) for path in result_paths], md_path)
