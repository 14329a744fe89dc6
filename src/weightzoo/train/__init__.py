"""Training stage: zoos trained as batched ensembles.

* :mod:`.trainer` — the batched ensemble trainer (bit-identical to each trial alone);
* :mod:`.models` — the model families (DNN, CNN, ViT) in their batched form;
* :mod:`.optim` — Adam over stacked trials;
* :mod:`.device` — device choice, determinism and allocator settings;
* :mod:`.memory` — how many trials fit a device at once;
* :mod:`.dynamics` — per-epoch layer statistics recorded while training;
* :mod:`.reference` — the textbook one-trial loop the trainer is proven against.
"""
