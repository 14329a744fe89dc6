"""Training devices, checked without a GPU: the trainer on ``meta``, no float64 off the CPU
when the target is Apple MPS, the device/determinism/strategy choices with CUDA and MPS
availability faked, the fused-Adam probe, and the memory sizing against the paper's grid.

What only a real GPU can show is in tests/gpu/ (skipped here)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from weightzoo.config import (
    experiment_settings,
    gpus_per_training_job,
    load_config,
    plan_jobs,
    planning_device_type,
    validate_config,
)
from weightzoo.data.catalog import IMAGE_SHAPES, NUM_CLASSES
from weightzoo.stages.train import job_device, size_job, train_job
from weightzoo.train import device as devices
from weightzoo.train.dynamics import DynamicsRecorder
from weightzoo.train.memory import (
    JobTooLarge,
    check_fits,
    eval_chunk_samples,
    step_memory,
    sub_ensembles,
    trials_that_fit,
)
from weightzoo.train.models import get_family
from weightzoo.train.optim import BlockAlignedAdam, fused_adam_works, make_adam
from weightzoo.train.reference import train_reference
from weightzoo.train.seeds import trial_seed
from weightzoo.train.trainer import (
    EnsembleTrainer,
    TensorData,
    TrainSettings,
    train_trials,
)
from weightzoo.zoo.hdf5 import read_job_file

REPO = Path(__file__).resolve().parents[1]
GB = 1 << 30

MODELS = [
    pytest.param("dnn", {"widths": [8, 6]}, None, id="dnn"),
    pytest.param("cnn", {"channels": 3}, "loop", id="cnn-loop"),
    pytest.param("cnn", {"channels": 3, "head": "gap"}, "grouped", id="cnn-grouped-gap"),
    pytest.param(
        "vit", {"d_model": 8, "nhead": 2, "patch": 4, "dim_feedforward": 12}, None, id="vit"
    ),
]


def family(model, strategy):
    return get_family(model, strategy=strategy) if strategy else get_family(model)


def seeds(n):
    return [trial_seed(0, "test-device", "arch", i) for i in range(n)]


@pytest.fixture
def meta_digits(digits_arrays):
    """Digits on the ``meta`` device: shapes and dtypes only, no memory, no arithmetic."""
    x_tr, y_tr, x_te, y_te = digits_arrays
    return TensorData.from_arrays(x_tr[:40], y_tr[:40], x_te[:30], y_te[:30], 16, device="meta")


@pytest.fixture
def no_gpu(monkeypatch):
    """Neither CUDA nor MPS; tests switch one on."""
    # memory sizing imports torch._dynamo, whose import reads the real is_available: first
    import torch._dynamo  # noqa: F401

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    return monkeypatch


def check_before_training(config: dict) -> dict:
    """What runs before any trial trains: config validation (Snakemake's process, no
    torch), then each job's own device check (weightzoo.stages.train.job_device)."""
    full = validate_config(config)
    for name in full["experiments"]:
        job_device({"experiment": name}, experiment_settings(full, name))
    return full


def config_with(training=None, execution=None, exp_training=None):
    exp = {
        "model": "cnn",
        "dataset": "cifar10",
        "trials": 2,
        "architectures": [{"channels": 4}],
        "bands": {"high": [50, 100]},
    }
    if exp_training:
        exp["training"] = exp_training
    config = {"experiments": {"cnn_x": exp}}
    if training:
        config["training"] = training
    if execution:
        config["execution"] = execution
    return config


# --------------------------------------------------------------------------- meta device
@pytest.mark.parametrize(("model", "arch", "strategy"), MODELS)
def test_trainer_and_evaluation_run_on_meta(model, arch, strategy, meta_digits):
    trainer = EnsembleTrainer(
        family(model, strategy), arch, seeds(3), meta_digits, TrainSettings(batch_size=10)
    )
    assert all(p.device.type == "meta" for p in trainer.params.values())
    for loss, acc in (
        trainer.train_epoch(),
        trainer.evaluate(meta_digits.x_test, meta_digits.y_test),
    ):
        assert loss.shape == acc.shape == (3,)
        assert loss.device.type == "meta" and loss.dtype == torch.float64


class NoFloat64OffCpu(TorchDispatchMode):
    """Fails on any op that makes or takes a float64 tensor anywhere but on the CPU."""

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in tree_leaves((out, args, kwargs)):
            if isinstance(t, torch.Tensor) and t.dtype == torch.float64 and t.device.type != "cpu":
                raise AssertionError(f"{func}: float64 tensor on {t.device}")
        return out


@pytest.fixture
def meta_is_mps(monkeypatch):
    """Let the trainer treat ``meta`` as it treats MPS (no float64)."""
    monkeypatch.setattr(
        devices, "has_float64", lambda d: torch.device(d).type not in ("mps", "meta")
    )


def train_and_evaluate(model, arch, strategy, data):
    """One epoch, its layer dynamics (as EnsembleTrainer.run records them), an evaluation."""
    trainer = EnsembleTrainer(
        family(model, strategy), arch, seeds(2), data, TrainSettings(batch_size=10)
    )
    layers = [layer.param for layer in trainer.family.layers(arch)]
    dynamics = DynamicsRecorder(trainer.params, layers, epochs=1)
    trainer.train_epoch()
    dynamics.record(trainer.params, 0, torch.zeros(2, dtype=torch.bool, device=trainer.device))
    assert all(v.dtype == torch.float32 for s in dynamics.values.values() for v in s.values())
    return trainer.evaluate(data.x_test, data.y_test)


@pytest.mark.filterwarnings("ignore:for .* copying from a non-meta parameter")
@pytest.mark.parametrize(("model", "arch", "strategy"), MODELS)
def test_no_float64_off_the_cpu_when_the_target_is_mps(
    model, arch, strategy, digits_arrays, meta_is_mps
):
    x_tr, y_tr, x_te, y_te = digits_arrays
    with NoFloat64OffCpu():  # also the data upload and the initial weights' cast and move
        data = TensorData.from_arrays(x_tr[:40], y_tr[:40], x_te[:30], y_te[:30], 16, device="meta")
        loss, acc = train_and_evaluate(model, arch, strategy, data)
        # the benchmarks' (b) rows: one trial the plain way, nn.Module + torch.optim.Adam
        settings = TrainSettings(epochs=1, batch_size=10)
        train_reference(family(model, strategy), arch, seeds(1)[0], data, settings, steps=2)
    assert loss.dtype == acc.dtype == torch.float32


def test_the_float64_check_catches_the_old_accumulators(meta_digits):
    """Without the MPS rule (meta keeps float64 sums) the mode fails: it can see them."""
    with pytest.raises(AssertionError, match="float64 tensor on meta"), NoFloat64OffCpu():
        train_and_evaluate("dnn", {"widths": [4]}, None, meta_digits)


# --------------------------------------------------------------------------- device choice
def test_auto_picks_cuda_then_mps_then_cpu(no_gpu):
    assert devices.resolve_device("auto").type == "cpu"
    no_gpu.setattr(torch.backends.mps, "is_available", lambda: True)
    assert devices.resolve_device("auto").type == "mps"
    no_gpu.setattr(torch.cuda, "is_available", lambda: True)
    assert devices.resolve_device("auto").type == "cuda"
    assert devices.resolve_device("auto", "float64").type == "cuda"
    assert devices.resolve_device("cuda:1") == torch.device("cuda:1")


@pytest.mark.parametrize(
    ("training", "exp_training", "mps"),
    [
        ({"dtype": "float64", "device": "mps"}, None, False),
        ({"dtype": "float64"}, None, True),  # auto finds MPS
        ({"device": "mps"}, {"dtype": "float64"}, False),  # an experiment's own override
    ],
    ids=["explicit-mps", "auto-finds-mps", "experiment-override"],
)
def test_float64_on_mps_is_rejected_naming_the_keys(no_gpu, training, exp_training, mps):
    """An explicit device fails config validation; what ``auto`` finds, the job checks."""
    no_gpu.setattr(torch.backends.mps, "is_available", lambda: mps)
    with pytest.raises(ValueError) as err:  # ConfigError or, for auto, DeviceError
        check_before_training(config_with(training, exp_training=exp_training))
    for words in ("experiments.cnn_x", "training.dtype", "training.device", "MPS has no float64"):
        assert words in str(err.value)


def test_float64_runs_where_the_device_has_it(no_gpu):
    no_gpu.setattr(torch.backends.mps, "is_available", lambda: True)
    check_before_training(config_with({"dtype": "float64", "device": "cpu"}))
    no_gpu.setattr(torch.cuda, "is_available", lambda: True)
    check_before_training(config_with({"dtype": "float64"}))  # auto finds CUDA first


def test_config_validation_does_not_ask_the_gpu_its_size(no_gpu):
    """That would hold a CUDA context in the Snakemake process; the job checks `auto`."""

    def no_cuda_call(device):
        raise AssertionError("config validation queried the GPU")

    no_gpu.setattr(torch.cuda, "is_available", lambda: True)
    no_gpu.setattr(torch.cuda, "get_device_properties", no_cuda_call)
    validate_config(config_with())
    with pytest.raises(AssertionError, match="queried the GPU"):
        devices.device_memory_budget("cuda", "auto")  # what a job on CUDA does


def test_strategy_auto_is_the_loop_on_mps_and_grouped_on_cuda():
    from weightzoo.train.models import family_for_device

    picks = {
        d: family_for_device("cnn", "auto", torch.device(d)).strategy
        for d in ("cpu", "mps", "cuda")
    }
    assert picks == {"cpu": "loop", "mps": "loop", "cuda": "grouped"}
    assert family_for_device("cnn", "grouped", torch.device("mps")).strategy == "grouped"


def test_gpu_resource_counts_mps_as_a_gpu(monkeypatch):
    import weightzoo.config

    monkeypatch.setattr(weightzoo.config, "planning_device_type", lambda: "mps")
    assert gpus_per_training_job(validate_config(config_with())) == 1
    assert gpus_per_training_job(validate_config(config_with({"device": "mps"}))) == 1


def test_the_planning_device_is_what_the_job_finds():
    """``auto`` resolved for the gpu resource in a child process, as in this one."""
    assert planning_device_type() == devices.resolve_device("auto").type


# --------------------------------------------------------------------------- determinism
@pytest.fixture
def restore_torch_flags():
    """apply_device_settings changes process-wide flags: put them back."""
    saved = (
        torch.are_deterministic_algorithms_enabled(),
        torch.backends.cudnn.benchmark,
        torch.backends.cudnn.deterministic,
        torch.backends.cuda.matmul.fp32_precision,
        torch.backends.cudnn.conv.fp32_precision,
        torch.backends.cuda.flash_sdp_enabled(),
        torch.backends.cuda.mem_efficient_sdp_enabled(),
        torch.backends.cuda.cudnn_sdp_enabled(),
        os.environ.get("CUBLAS_WORKSPACE_CONFIG"),
    )
    yield
    torch.use_deterministic_algorithms(saved[0])
    torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = saved[1:3]
    torch.backends.cuda.matmul.fp32_precision = saved[3]
    torch.backends.cudnn.conv.fp32_precision = saved[4]
    torch.backends.cuda.enable_flash_sdp(saved[5])
    torch.backends.cuda.enable_mem_efficient_sdp(saved[6])
    torch.backends.cuda.enable_cudnn_sdp(saved[7])
    if saved[8] is None:
        os.environ.pop("CUBLAS_WORKSPACE_CONFIG", None)
    else:
        os.environ["CUBLAS_WORKSPACE_CONFIG"] = saved[8]


def test_cuda_gets_deterministic_full_precision_mode(restore_torch_flags, monkeypatch):
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    record = devices.apply_device_settings("cuda")
    assert torch.are_deterministic_algorithms_enabled()
    assert not torch.backends.cudnn.benchmark and torch.backends.cudnn.deterministic
    assert torch.backends.cuda.matmul.fp32_precision == "ieee"
    assert torch.backends.cudnn.conv.fp32_precision == "ieee"
    assert not torch.backends.cuda.flash_sdp_enabled()
    assert not torch.backends.cuda.mem_efficient_sdp_enabled()
    assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
    assert record == {
        "device_type": "cuda",
        "accumulator_dtype": "float64",
        "deterministic_algorithms": True,
        "cudnn_benchmark": False,
        "cudnn_deterministic": True,
        "matmul_fp32_precision": "ieee",
        "cudnn_conv_fp32_precision": "ieee",
        "sdpa_backends": "math",
        "cublas_workspace_config": ":4096:8",
        "guarantee": "rerun bit-identical; alone vs ensemble within tolerance",
    }


def test_allow_tf32_is_the_documented_way_to_tf32(restore_torch_flags, monkeypatch):
    monkeypatch.setenv("CUBLAS_WORKSPACE_CONFIG", ":16:8")  # the user's own value is kept
    record = devices.apply_device_settings("cuda", allow_tf32=True)
    assert torch.backends.cuda.matmul.fp32_precision == "tf32"
    assert torch.backends.cudnn.conv.fp32_precision == "tf32"
    assert record["matmul_fp32_precision"] == record["cudnn_conv_fp32_precision"] == "tf32"
    assert record["cublas_workspace_config"] == os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":16:8"
    assert validate_config(config_with({"allow_tf32": True}))["training"]["allow_tf32"] is True


def test_cpu_and_mps_change_no_global_flag(restore_torch_flags):
    before = (
        torch.are_deterministic_algorithms_enabled(),
        torch.backends.cudnn.conv.fp32_precision,
    )
    cpu = devices.apply_device_settings("cpu")
    mps = devices.apply_device_settings("mps")
    assert (
        torch.are_deterministic_algorithms_enabled(),
        torch.backends.cudnn.conv.fp32_precision,
    ) == before
    assert cpu["guarantee"] == "bit-identical alone or in any ensemble"
    assert (mps["accumulator_dtype"], mps["max_array_bytes"]) == ("float32", 2**32)


def test_every_job_records_its_device_settings(tmp_path):
    from weightzoo.data.sources import prepare_dataset

    data_path = tmp_path / "digits.npz"
    prepare_dataset("digits", data_path, log=lambda *a: None)
    job = {
        "experiment": "dnn_digits",
        "model": "dnn",
        "dataset": "digits",
        "arch_name": "h4",
        "arch": {"widths": [4]},
        "start": 0,
        "stop": 3,
    }
    settings = TrainSettings(epochs=1, device="cpu").as_dict()
    out = tmp_path / "job.h5"
    train_job(job, 0, settings, data_path, out, progress_file=None, device_memory_mb=64)
    recorded = read_job_file(out)[0].settings
    assert recorded["allow_tf32"] is False and recorded["optimizer_step"] == "fused-block-aligned"
    device_settings = recorded["device_settings"]
    assert device_settings["device_type"] == "cpu"
    assert device_settings["guarantee"] == "bit-identical alone or in any ensemble"
    assert device_settings["memory"]["max_trials"] is None  # 3 tiny trials fit 64 MB
    assert device_settings["memory"]["budget_mb"] < 64  # the dataset's share is taken off


# --------------------------------------------------------------------------- fused Adam
def test_fused_adam_is_probed_not_trusted_to_the_constructor():
    p = torch.zeros(4, device="meta", requires_grad=True)
    torch.optim.Adam([p], lr=1e-3, fused=True)  # accepted here, fails only at step()
    assert not fused_adam_works(torch.device("meta"), torch.float32)
    assert make_adam([p], 1e-3).defaults["foreach"] is True
    assert not make_adam([p], 1e-3).defaults["fused"]


def test_cpu_adam_is_the_block_aligned_fused_one():
    p = torch.zeros(4, requires_grad=True)
    assert isinstance(make_adam([p], 1e-3), BlockAlignedAdam)


# --------------------------------------------------------------------------- memory
def test_step_memory_counts_a_small_dnn_exactly():
    # batch 10 through 64 -> 5 -> 5 -> 10 (float32): new tensors are the three baddbmm
    # outputs [1, 10, 5], [1, 10, 5], [1, 10, 10] and the two relu outputs [1, 10, 5]
    m = step_memory(get_family("dnn"), {"widths": [5, 5]}, (1, 8, 8), 10, batch=10)
    assert m.largest_array == 10 * 10 * 4
    assert m.forward == (4 * 10 * 5 + 10 * 10) * 4
    assert m.params == (64 * 5 + 5 + 5 * 5 + 5 + 5 * 10 + 10) * 4
    assert m.inputs == 10 * 64 * 4
    # parameters: value, gradient, Adam's two moments, the dynamics' two copies
    assert m.per_trial == m.forward + 2 * m.largest_array + m.inputs + 6 * m.params


def paper_step(experiment, channels_or_index, strategy="loop"):
    config = load_config(REPO / "config" / "config.yaml")
    exp = config["experiments"][experiment]
    arch = next(a for a in exp["architectures"] if a.get("channels") == channels_or_index)
    settings = experiment_settings(config, experiment)
    fam = (
        get_family(exp["model"], strategy=strategy)
        if exp["model"] == "cnn"
        else get_family(exp["model"])
    )
    return step_memory(fam, arch, IMAGE_SHAPES[exp["dataset"]], NUM_CLASSES, settings.batch_size)


@pytest.mark.parametrize("strategy", ["loop", "grouped"])
def test_cnn_cifar10_c128_at_100_trials_does_not_fit_16gb_and_is_split(strategy):
    m = paper_step("cnn_cifar10", 128, strategy)
    # the conv output [T=100, batch 100, C=128, 30, 30] in float32: 4.6 GB, over 2**32 bytes
    assert m.largest_array_bytes(100) == 100 * 100 * 128 * 30 * 30 * 4 > 2**32
    assert m.training_bytes(100) > 16 * GB
    cap = trials_that_fit(m, 16 * GB, None)
    assert 10 < cap < 100
    assert m.training_bytes(cap) <= 16 * GB < m.training_bytes(cap + 1)
    slices = sub_ensembles(100, cap)
    assert (
        sum(s.stop - s.start for s in slices) == 100
        and max(s.stop - s.start for s in slices) == cap
    )
    # Apple MPS: the per-array limit alone allows 93 trials (2**32 / 46.08 MB)
    assert trials_that_fit(m, None, 2**32) == 93


def split_jobs(strategy: str, budget: int, array_limit: int | None) -> dict[str, int]:
    """Paper jobs (config/config.yaml) whose trials do not fit at once -> trials that do."""
    from weightzoo.config import plan_jobs

    config = load_config(REPO / "config" / "config.yaml")
    split = {}
    for job in plan_jobs(config):
        exp = config["experiments"][job.experiment]
        fam = get_family("cnn", strategy=strategy) if job.model == "cnn" else get_family(job.model)
        m = step_memory(fam, job.arch, IMAGE_SHAPES[job.dataset], NUM_CLASSES, 100)
        cap = check_fits(job.experiment, job.arch_name, m, budget, array_limit)
        if cap < job.stop - job.start:
            split[f"{job.experiment}/{job.arch_name}"] = cap
        assert exp["model"] != "dnn" or cap >= 100  # every DNN job fits whole
    return split


def test_paper_grid_on_a_16gb_cuda_gpu():
    """100 trials per job: only CIFAR-10's 128-channel CNN is split (grouped conv)."""
    assert split_jobs("grouped", 16 * GB, None) == {"cnn_cifar10/c128": 80}


def test_paper_grid_on_a_16gb_mac():
    """The loop runs the CNN one trial at a time (no stacked conv map): only CIFAR-10's
    128-channel CNN is split."""
    assert split_jobs("loop", 16 * GB, 2**32) == {"cnn_cifar10/c128": 80}


def test_a_job_that_cannot_fit_says_so_before_training(digits_tensors):
    data = digits_tensors(torch.float32)
    vit = {"d_model": 784, "nhead": 16, "patch": 4, "dim_feedforward": 2048}
    job = {"experiment": "vit_digits", "arch": vit, "arch_name": "big", "start": 0, "stop": 5}
    with pytest.raises(JobTooLarge) as err:
        size_job(job, get_family("vit"), data, TrainSettings(), device_memory_mb=10)
    for words in (
        "experiments.vit_digits",
        "big",
        "execution.device_memory_mb",
        "training.batch_size",
    ):
        assert words in str(err.value)


def test_mps_per_array_limit_names_the_batch_size():
    m = paper_step("cnn_cifar10", 128)
    with pytest.raises(JobTooLarge, match="per-array limit; lower training.batch_size"):
        check_fits("cnn_cifar10", "c128", m, None, m.largest_array_bytes(1) - 1)


def test_a_job_sizes_itself_for_an_explicit_budget_before_training():
    """Config validation does not size jobs (that needs torch); the job does, first."""
    config = load_config(REPO / "config" / "config.yaml")
    assert config["execution"]["device_memory_mb"] == "auto"
    small = config_with(execution={"device_memory_mb": 10})
    small["experiments"]["cnn_x"]["architectures"] = [{"channels": 128}]
    full = validate_config(small)  # passes: validation never sizes
    (job,) = plan_jobs(full)
    images = np.zeros((4, *IMAGE_SHAPES["cifar10"]), dtype=np.uint8)
    labels = np.zeros(4, dtype=np.int64)
    data = TensorData.from_arrays(images, labels, images, labels, 255)
    settings = experiment_settings(full, "cnn_x")
    with pytest.raises(
        JobTooLarge, match="experiments.cnn_x, architecture c128.*execution.device_memory_mb"
    ):
        size_job(
            vars(job), get_family("cnn"), data, settings, full["execution"]["device_memory_mb"]
        )


def test_cpu_default_has_no_budget():
    assert devices.device_memory_budget("cpu", "auto") is None
    assert devices.device_memory_budget("cpu", 100) == 100 << 20
    m = paper_step("cnn_cifar10", 128)
    assert eval_chunk_samples(m, 100, None, None) is None
    # with a budget the evaluation chunk is bounded by its activations
    chunk = eval_chunk_samples(m, 100, 16 * GB, 2**32)
    assert chunk >= 1 and 100 * chunk * m.largest_array // m.batch <= 2**32


def test_sub_ensembles_change_no_result_on_the_cpu(digits_tensors):
    data = digits_tensors(torch.float32, n_train=300)
    settings = TrainSettings(epochs=2, init_std=0.1)
    arch = {"widths": [12, 8]}
    whole = train_trials(get_family("dnn"), arch, seeds(5), data, settings, progress_file=None)
    split = train_trials(
        get_family("dnn"),
        arch,
        seeds(5),
        data,
        settings,
        progress_file=None,
        max_trials=2,
        eval_chunk=7,
    )
    for name in whole.final:
        assert np.array_equal(whole.final[name], split.final[name]), name
    assert np.array_equal(whole.diverged_epoch, split.diverged_epoch)
    for name in ("train_loss", "train_acc"):
        assert np.array_equal(whole.metrics[name], split.metrics[name]), name
    # evaluation in chunks of 7 samples sums in another order: equal up to rounding
    np.testing.assert_allclose(whole.metrics["test_loss"], split.metrics["test_loss"], rtol=1e-6)
    np.testing.assert_array_equal(whole.metrics["test_acc"], split.metrics["test_acc"])


def test_benchmarks_take_every_device(monkeypatch):
    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))
    import bench_dnn
    import bench_models

    for name in ("cpu", "cuda", "mps"):
        assert bench_dnn.parse_args(["--device", name]).device == name
        assert bench_models.parse_args(["--device", name]).device == name


def test_size_job_splits_what_does_not_fit_and_takes_the_data_off(digits_tensors):
    data = digits_tensors(torch.float32)  # 1797 images of 8x8 float32: 0.46 MB
    job = {"experiment": "dnn_digits", "arch": {"widths": [50, 50]}, "arch_name": "h50-50"}
    job.update(start=0, stop=5)
    sizing = size_job(job, get_family("dnn"), data, TrainSettings(), device_memory_mb=1)
    m = step_memory(get_family("dnn"), job["arch"], (1, 8, 8), 10, 100)
    data_bytes = sum(
        t.numel() * t.element_size() for t in (data.x_train, data.y_train, data.x_test, data.y_test)
    )
    assert sizing["max_trials"] == ((1 << 20) - data_bytes) // m.per_trial
    assert 1 <= sizing["max_trials"] < 5
    assert sizing["eval_chunk"] >= 1
    roomy = size_job(job, get_family("dnn"), data, TrainSettings(), device_memory_mb=100)
    assert roomy["max_trials"] is None  # all 5 at once


def test_blas_probe_sees_alignment_dependence_when_mkl_started_without_weightzoo():
    # the planted effect: torch multiplies matrices before weightzoo is imported, so MKL
    # starts in its default mode and computes a misaligned trial differently
    import subprocess
    import sys

    probe = "from weightzoo.train.device import blas_alignment_independent as p; print(p())"
    late = "import torch; torch.ones(64, 64) @ torch.ones(64, 64); " + probe
    env = {k: v for k, v in os.environ.items() if k != "MKL_CBWR"}
    outputs = [
        subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
        ).stdout.strip()
        for code in (probe, late)
    ]
    assert outputs == ["True", "False"]
    assert devices.device_settings("cpu")["guarantee"] == "bit-identical alone or in any ensemble"
