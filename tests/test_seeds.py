"""Every part of a trial's identity changes its seed: two trials that differ only in their
experiment, architecture, trial id or the config's seed never share init and data order."""

import itertools

from weightzoo.train.seeds import trial_seed, trial_seeds

EXPERIMENTS = ("dnn_digits", "cnn_digits", "dnn_fashion-mnist")
ARCHS = ("h5-5", "h8-8", "c4", "d64-h4-p4-f128")
TRIALS = range(50)


def test_distinct_identities_give_distinct_seeds():
    identities = list(itertools.product((0, 1), EXPERIMENTS, ARCHS, TRIALS))
    seeds = {trial_seed(*identity) for identity in identities}
    assert len(seeds) == len(identities)


def test_each_part_of_the_identity_changes_the_seed():
    base = trial_seed(0, "dnn_digits", "h5-5", 3)
    assert trial_seed(1, "dnn_digits", "h5-5", 3) != base
    assert trial_seed(0, "cnn_digits", "h5-5", 3) != base
    assert trial_seed(0, "dnn_digits", "h8-8", 3) != base
    assert trial_seed(0, "dnn_digits", "h5-5", 4) != base


def test_seeds_fit_a_torch_generator_and_follow_the_ids():
    seeds = trial_seeds(0, "dnn_digits", "h5-5", [4, 0, 2])
    assert seeds == [trial_seed(0, "dnn_digits", "h5-5", i) for i in (4, 0, 2)]
    assert all(0 <= s < 2**63 for s in seeds)


def test_golden_seeds():
    """Pinned values: a change here retrains every zoo (and breaks its reproduction)."""
    assert trial_seed(0, "dnn_digits", "h5-5", 0) == 7917524746300433821
    assert trial_seed(0, "cnn_digits", "c4", 7) == 4166634482923185640
    assert trial_seed(1, "dnn_fashion-mnist", "h20-20", 299) == 154389096102865209
