"""The machine a benchmark ran on, as the report's last lines say it: CPU model, threads,
versions, and the allocator settings that change the timings."""

from __future__ import annotations

import os
import platform
import shlex
import sys

import torch

# glibc hands allocations above its mmap threshold (dynamic, at most this on 64-bit) straight to
# mmap and unmaps them on free, and trims a large free heap top; a big tensor allocated anew every
# step (the [T, 100, 784] fc1 gradient is 31 MB at T = 100) then gets fresh, faulting pages
# every step.
GLIBC_MMAP_THRESHOLD_MAX = 32 << 20
# What --malloc-tuned sets before re-running the script. THP_MEM_ALLOC_ENABLE makes torch align
# big CPU tensors to 2 MiB (transparent huge pages); the MALLOC_* values keep freed memory in
# the process instead of returning it to the kernel.
MALLOC_TUNED_ENV = {
    "THP_MEM_ALLOC_ENABLE": "1",
    "MALLOC_MMAP_THRESHOLD_": str(1 << 36),
    "MALLOC_TRIM_THRESHOLD_": str(1 << 36),
}
ALLOCATOR_ENV_VARS = (*MALLOC_TUNED_ENV, "MALLOC_TOP_PAD_", "MALLOC_MMAP_MAX_", "LD_PRELOAD")


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_lines(device: torch.device, data_source: str) -> list[str]:
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    if device.type == "cuda":
        device_name = f"cuda: {torch.cuda.get_device_name(device)}"
    else:
        device_name = device.type
    allocator = {k: os.environ[k] for k in ALLOCATOR_ENV_VARS if k in os.environ}
    libc = " ".join(platform.libc_ver()) or "unknown"
    thp = read_first_line("/sys/kernel/mm/transparent_hugepage/enabled")
    return [
        f"- CPU: {cpu_model()}; {os.cpu_count()} logical cores, {usable} usable",
        f"- torch {torch.__version__}, {torch.get_num_threads()} threads; device {device_name}; "
        f"float32 matmul precision {torch.get_float32_matmul_precision()}",
        f"- libc {libc}; transparent hugepages: {thp}; allocator env: {allocator or 'default'}",
        f"- data: {data_source}",
        f"- command: {shlex.join(sys.orig_argv)}",
    ]


def read_first_line(path: str) -> str:
    try:
        with open(path) as fh:
            return fh.readline().strip()
    except OSError:
        return "n/a"
