"""What the benchmarks promise, in one place: each target a script's verdict line checks
(benchmarks/README.md explains them)."""

from __future__ import annotations

TARGET_CPU_X_A = 15.0
TARGET_CPU_PCT_MATMUL = 60.0
TARGET_CPU_X_RECIPE = 2.0  # (c) over (d) at 100 trials: the batched trainer's target
TARGET_GPU_X_A = 300.0
# recording the layer dynamics may cost at most this share of training time (CPU, 100
# trials), taken over one epoch of MNIST / Fashion-MNIST: 60 000 images / batch 100
TARGET_DYNAMICS_PCT = 10.0

# bench_models.py: the batched trainer at 100 trials over the same model's one-trial loop (b)
TARGET_CPU_X_B = {"cnn": 1.5, "vit": 2.0}
TARGET_TRIALS = 100
