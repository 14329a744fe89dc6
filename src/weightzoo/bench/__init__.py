"""Benchmark machinery shared by the scripts in benchmarks/ (bench_dnn.py, bench_models.py),
each of which stays a thin command line over it.

* :mod:`.harness` — timing rounds, medians and spreads, ratios and verdicts, the table and
  CSV, the shared options;
* :mod:`.targets` — every target the verdict lines check;
* :mod:`.training` — images, settings and the (b)/(c) methods every model is timed by;
* :mod:`.profile` — self CPU time by category;
* :mod:`.machine` — the machine and allocator lines of a report.
"""
