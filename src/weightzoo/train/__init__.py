"""Training stage: zoos trained as batched ensembles.

* :mod:`.trainer` — the batched ensemble trainer (bit-identical to each trial alone);
* :mod:`.models` — the model families (DNN, CNN, ViT) in their batched form, on top of
  :mod:`.shapes` (architecture names, layers and parameter shapes, no torch);
* :mod:`.settings` — the training settings and their defaults (no torch);
* :mod:`.seeds` — every trial's seed from its identity (no torch);
* :mod:`.hparams` — per-trial training settings drawn from distributions (no torch; not
  yet read by the trainer);
* :mod:`.optim` — Adam over stacked trials, and which Adam a device gets;
* :mod:`.device` — device choice, determinism, BLAS and allocator settings;
* :mod:`.memory` — how many trials fit a device at once;
* :mod:`.dynamics` — per-epoch layer statistics recorded while training;
* :mod:`.reference` — the textbook one-trial loop the trainer is proven against.
"""
