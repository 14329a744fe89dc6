"""Where a benchmarked call spends its time: torch's profiler, self CPU time by category
(matmuls, copies, the Adam step, ...), one line per profiled method."""

from __future__ import annotations

from collections.abc import Mapping

from .harness import Method

# op name prefix -> category of --profile's breakdown (ops inside the optimizer step count
# as "Adam step" whatever they are: the foreach Adam runs plain aten::sqrt, aten::lerp_, ...)
MATMUL_OPS = ("aten::bmm", "aten::baddbmm", "aten::mm", "aten::addmm")
COPY_OPS = ("aten::copy_", "aten::cat", "aten::clone")
PROFILE_CATEGORIES = {
    "matmul (bmm, baddbmm, mm)": MATMUL_OPS,
    "copies (copy_, cat, clone)": COPY_OPS,
    "data gather (index_select)": ("aten::index_select", "aten::index"),
    "loss (log_softmax, nll)": ("aten::_log_softmax", "aten::nll_loss", "aten::log_softmax"),
}
ADAM_STEP_RECORDS = ("weightzoo.adam_step", "Optimizer.step")


def inside_adam_step(event) -> bool:
    parent = event.cpu_parent
    while parent is not None:
        if parent.name.startswith(ADAM_STEP_RECORDS):
            return True
        parent = parent.cpu_parent
    return False


def profile_category(event, categories: Mapping[str, tuple[str, ...]]) -> str:
    if inside_adam_step(event):
        return "Adam step"
    return next(
        (c for c, prefixes in categories.items() if event.name.startswith(prefixes)),
        "everything else",
    )


def profile_lines(
    method: Method, categories: Mapping[str, tuple[str, ...]] = PROFILE_CATEGORIES
) -> list[str]:
    """Share of self CPU time per category over one call of ``method`` (the first category,
    then the Adam step, then the others)."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        method.run()
    first, *others = categories
    totals = dict.fromkeys([first, "Adam step", *others, "everything else"], 0.0)
    for event in prof.events():
        totals[profile_category(event, categories)] += event.self_cpu_time_total
    whole = sum(totals.values()) or 1.0
    shares = ", ".join(f"{c} {100 * v / whole:.0f} %" for c, v in totals.items())
    return [f"- profile of {method.label} (self CPU time, one call): {shares}"]
