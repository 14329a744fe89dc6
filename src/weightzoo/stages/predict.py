"""The prediction stages (rules predict, predict_early, predict_table): accuracy and
fate predicted from weights."""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)


def predict(features_path, results_path, oof_path) -> None:
    """Accuracy predicted from one experiment's features table (issue 9 §3)."""
    import pandas as pd

    from ..analysis import predict as p

    results, oof = p.predict_experiment(pd.read_parquet(features_path))
    p.write_predictions(results, oof, results_path, oof_path)
    for _, r in results.iterrows():
        log.info(
            "%s %s %s: %s",
            r["features"],
            r["regressor"],
            r["validation"],
            r["reason"] if r["status"] != "ok" else f"R² {r['r2']:.3f}, τ {r['kendall_tau']:.3f}",
        )


def predict_early(features_path, out_path, epochs: int | None = None) -> None:
    """How early a trial's fate shows (issue 10 §3): ``<experiment>.early.csv``."""
    import pandas as pd

    from ..analysis import predict as p

    table = p.predict_early(pd.read_parquet(features_path), epochs)
    p.write_early(table, out_path)
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
    from ..analysis import predict as p

    p.write_markdown([p.read_results(path) for path in result_paths], md_path)
