"""Every command line the documentation shows runs as written.

The collector reads README.md, docs/**/*.md, benchmarks/README.md and slurm/README.md
(fenced shell blocks, and inline `code` spans in tables and prose) and the header comments
of the Snakefile and config/*.yaml (`#   snakemake ...`), and keeps every line that starts
with `make`, `snakemake`, `python` (each also as `.venv/bin/...`) or a console script of
pyproject.toml (`weightzoo ...`), after an optional `time` or `VAR=value` prefix. So a
sentence that shows a *wrong* spelling must not start its code span with the program name
(write `--cores 8 --resources gpu=1 all`, not `snakemake --cores 8 --resources gpu=1 all`).

Each line is checked as cheaply as proves it would run, in one shared copy of the repo,
all lines at once on as many workers as the machine has cores (each check is a
subprocess; the parametrized tests then report each line's own result):
- snakemake lines: the line as written plus `-n` (a dry run plans the jobs without data:
  no dataset, GPU or cluster is needed, so the paper's config and `--profile slurm` lines
  run with their own configs, and no demo config is substituted);
- make lines: `make -n` with the line's targets and variables, then a dry run of every
  snakemake line the recipe would run;
- python lines and console scripts: the line plus `--help` (argparse prints the help of the
  named (sub)command and exits), and every `--option` of the line must appear in that help.
A failure names the file and line (`README.md:42`); the test ids are the same.
The real `make demo`, end to end, is the slow test at the bottom.
"""

from __future__ import annotations

import functools
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from weightzoo.figures.registry import PAPER_FIGURES, figures_for

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
MARKDOWN = ("README.md", "docs/**/*.md", "benchmarks/README.md", "slurm/README.md")
COMMENTED = ("Snakefile", "config/*.yaml")
SHELL_FENCES = {"", "bash", "sh", "shell", "console"}
TIMEOUT = 300  # seconds per checked command (dry runs take a few)
# the repo copy leaves out what a fresh clone does not have (and the run outputs)
NOT_COPIED = (".git", ".venv", "results", "runs", ".snakemake", "__pycache__")
NOT_COPIED += ("*.egg-info", ".pytest_cache", ".ruff_cache", ".whl", ".gl")
TOP_LEVEL_NOT_COPIED = ("data",)  # the datasets directory; src/weightzoo/data/ is code


def not_copied(directory: str, names: list[str]) -> set[str]:
    """shutil.copytree's ``ignore``: what a fresh clone lacks, at any depth or at the top."""
    skipped = shutil.ignore_patterns(*NOT_COPIED)(directory, names)
    if Path(directory).resolve() == REPO:
        skipped |= {n for n in names if n in TOP_LEVEL_NOT_COPIED}
    return skipped


def console_scripts(root: Path = REPO) -> dict[str, str]:
    """{name: "module:function"} of pyproject.toml's [project.scripts]."""
    with open(root / "pyproject.toml", "rb") as f:
        return tomllib.load(f).get("project", {}).get("scripts", {})


# `weightzoo` also before pyproject.toml declares it: a documented command it lacks fails
PROGRAMS = {"make", "snakemake", "python", "python3", "weightzoo", *console_scripts()}


@dataclass(frozen=True)
class Documented:
    """One documented command line and where it is written."""

    file: str  # relative to the repository
    line: int
    text: str  # as written (continuation lines joined)

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"

    def _words(self) -> tuple[dict[str, str], list[str]]:
        """(the `VAR=value` prefixes, the command's words), a leading `time` dropped."""
        words = shlex.split(self.text, comments=True)
        env = {}
        while words and (words[0] == "time" or re.match(r"^\w+=", words[0])):
            name, _, value = words.pop(0).partition("=")
            if value or name != "time":
                env[name] = value
        return env, words

    @property
    def argv(self) -> list[str]:
        return self._words()[1]

    @property
    def env(self) -> dict[str, str]:
        return self._words()[0]

    @property
    def program(self) -> str:
        """`make`, `snakemake`, `python` or a console script name; '' if none of them."""
        try:
            argv = self.argv
        except ValueError:  # unbalanced quotes: not a shell line
            return ""
        if not argv:
            return ""
        if len(argv) > 1 and argv[1].endswith(
            ":"
        ):  # a message it prints: `weightzoo info: error: ...`
            return ""
        name = argv[0].removeprefix(".venv/bin/")
        name = "python" if name == "python3" else name
        return name if name in PROGRAMS else ""


# --------------------------------------------------------------------------- collecting
def _fenced_lines(lines: list[str]):
    """(line number, text) of the lines of shell code blocks, continuations joined."""
    fence, pending, start = None, "", 0
    for number, raw in enumerate(lines, 1):
        stripped = raw.strip()
        m = re.match(r"^(```+|~~~+)\s*([\w-]*)", stripped)
        if fence is None:
            if m:
                fence = (m.group(1), m.group(2).lower())
            continue
        if stripped.startswith(fence[0]):
            fence = None
            continue
        if fence[1] not in SHELL_FENCES:
            continue
        text = stripped.removeprefix("$ ")
        if not pending:
            start = number
        if text.endswith("\\"):
            pending += text[:-1] + " "
            continue
        yield start, pending + text
        pending = ""


def _inline_spans(lines: list[str]):
    """(line number, text) of the inline code spans outside code blocks."""
    in_fence = False
    for number, raw in enumerate(lines, 1):
        if re.match(r"^\s*(```|~~~)", raw):
            in_fence = not in_fence
            continue
        if in_fence:
            continue
        # a span may hold `\|` (an escaped table pipe)
        for span in re.findall(r"`([^`]+)`", raw):
            if " " in span.strip():  # a lone `snakemake` names the program, runs nothing
                yield number, span.replace("\\|", "|")


def _comment_lines(lines: list[str]):
    """Header comment lines that show a command: `#   snakemake --cores 2 all  # why`."""
    for number, raw in enumerate(lines, 1):
        m = re.match(r"^#\s{2,}(\S.*)$", raw)
        if m:
            yield number, m.group(1)


def collect(root: Path = REPO) -> list[Documented]:
    """Every documented command line under ``root`` (see the module docstring)."""
    found = []
    for pattern, readers in [(p, (_fenced_lines, _inline_spans)) for p in MARKDOWN] + [
        (p, (_comment_lines,)) for p in COMMENTED
    ]:
        for path in sorted(root.glob(pattern)):
            lines = path.read_text().splitlines()
            rel = str(path.relative_to(root))
            for reader in readers:
                for number, text in reader(lines):
                    command = Documented(rel, number, text.strip())
                    if command.program:
                        found.append(command)
    return sorted(found, key=lambda c: (c.file, c.line))


# --------------------------------------------------------------------------- checking
def copy_repo(dest: Path) -> Path:
    """A copy of the checkout as a fresh clone has it, with a `.venv` whose programs are this
    suite's (set up: its stamp is newer than pyproject.toml, so make installs nothing)."""
    shutil.copytree(REPO, dest, ignore=not_copied, symlinks=True)
    venv_bin = dest / ".venv" / "bin"
    venv_bin.mkdir(parents=True)
    for program in VENV_BIN.iterdir():
        (venv_bin / program.name).symlink_to(program)
    (dest / ".venv" / ".weightzoo-installed").touch()
    return dest


def _env(root: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    # the copy's own package for python lines; the workflow's jobs find theirs themselves
    return {**os.environ, "PYTHONPATH": str(root / "src"), **(extra or {})}


def _run(argv: list[str], root: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["timeout", "-k", "10", str(TIMEOUT), *argv],
        cwd=root,
        env=_env(root, env),
        capture_output=True,
        text=True,
    )


def _fail(where: str, text: str, what: str, proc: subprocess.CompletedProcess) -> None:
    output = (proc.stdout + proc.stderr)[-3000:]
    raise AssertionError(f"{where}: `{text}` {what} (exit {proc.returncode}):\n{output}")


@functools.cache  # many lines repeat (`snakemake --profile slurm`): one dry run each
def _dry_run(args: tuple[str, ...], root: Path, env: tuple = ()) -> subprocess.CompletedProcess:
    return _run([str(VENV_BIN / "snakemake"), *args, "-n"], root, dict(env))


def without_report(argv: list[str]) -> list[str]:
    """``argv`` less ``--report FILE``: a report needs a finished run, which a dry run is not.
    The rest (config, targets) still dry-runs; the report itself, for the test config, is
    built by tests/test_workflow.py::test_report_holds_every_figure_and_table."""
    out, skip = [], False
    for word in argv:
        if skip:
            skip = False
        elif word == "--report":
            skip = True
        elif not word.startswith("--report="):
            out.append(word)
    return out


def check_snakemake(command: Documented, root: Path, argv: list[str] | None = None) -> None:
    argv = without_report(argv or command.argv)
    proc = _dry_run(tuple(argv[1:]), root, tuple(sorted(command.env.items())))
    if proc.returncode != 0:
        _fail(command.where, command.text, f"fails as a dry run (`{shlex.join(argv)} -n`)", proc)


def check_make(command: Documented, root: Path) -> None:
    proc = _run(["make", "-n", *command.argv[1:]], root, command.env)
    if proc.returncode != 0:
        _fail(command.where, command.text, "fails with `make -n`", proc)
    for line in proc.stdout.replace("\\\n", " ").splitlines():  # recipe lines, joined
        words = line.split(maxsplit=1)
        if words and words[0].endswith("bin/snakemake"):
            check_snakemake(command, root, shlex.split(line))


@functools.cache
def _help(argv: tuple[str, ...], root: Path) -> subprocess.CompletedProcess:
    return _run([*argv, "--help"], root)


def check_with_help(command: Documented, root: Path) -> None:
    argv = command.argv
    if command.program == "python":
        argv = [sys.executable, *argv[1:]]
    else:  # a console script of pyproject.toml, run from the copy's own package
        scripts = console_scripts(root)
        assert command.program in scripts, (
            f"{command.where}: `{command.text}`: {command.program} is not a console script "
            f"of pyproject.toml ([project.scripts]: {sorted(scripts)})"
        )
        module, _, function = scripts[command.program].partition(":")
        code = (
            f"import sys; sys.argv[0] = {command.program!r}; "
            f"from {module} import {function}; sys.exit({function}())"
        )
        argv = [sys.executable, "-c", code, *argv[1:]]
    proc = _help(tuple(argv), root)
    if proc.returncode != 0:
        _fail(command.where, command.text, "fails with `--help` appended", proc)
    options = {word.split("=")[0] for word in argv if word.startswith("--")}
    unknown = sorted(
        o for o in options if not re.search(rf"(?<![\w-]){re.escape(o)}(?![\w-])", proc.stdout)
    )
    if unknown:
        _fail(
            command.where, command.text, f"uses options its --help does not list: {unknown}", proc
        )


def check(command: Documented, root: Path) -> None:
    """Raise AssertionError naming ``command.where`` unless the command would run."""
    if command.program == "snakemake":
        check_snakemake(command, root)
    elif command.program == "make":
        check_make(command, root)
    else:
        check_with_help(command, root)


# --------------------------------------------------------------------------- tests
COMMANDS = collect()


@pytest.fixture(scope="module")
def repo_copy(tmp_path_factory) -> Path:
    return copy_repo(tmp_path_factory.mktemp("documented") / "repo")


def check_all(commands: list[Documented], root: Path, workers: int) -> dict[str, BaseException]:
    """{where: the error} of the commands that would not run, checked ``workers`` at a
    time (each check waits on its subprocess; the dry runs read the copy and write only
    Snakemake's own bookkeeping, which concurrent dry runs share safely: a dry run's lock
    only warns)."""

    def outcome(command: Documented) -> BaseException | None:
        try:
            check(command, root)
        except BaseException as e:  # noqa: BLE001 - reported by the command's own test
            return e
        return None

    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(outcome, commands))
    return {c.where: e for c, e in zip(commands, results, strict=True) if e is not None}


@pytest.fixture(scope="module")
def documented_failures(repo_copy) -> dict[str, BaseException]:
    return check_all(COMMANDS, repo_copy, workers=max(1, len(os.sched_getaffinity(0))))


def test_the_collector_finds_the_quick_start_and_every_kind_of_command():
    texts = {(c.file, c.text) for c in COMMANDS}
    assert ("README.md", "make demo") in texts
    assert ("README.md", "make test") in texts
    assert {c.program for c in COMMANDS} >= {"make", "snakemake", "python"}
    assert any(c.file.startswith("docs/") for c in COMMANDS)
    assert any(c.file == "Snakefile" for c in COMMANDS)


@pytest.mark.parametrize("command", COMMANDS, ids=[c.where for c in COMMANDS])
def test_documented_command_runs_as_written(command, documented_failures):
    if command.where in documented_failures:
        raise documented_failures[command.where]


def test_the_readme_shows_the_snakemake_line_that_make_demo_runs(repo_copy):
    """The Quick start prints the pipeline command of `make demo`: they must not drift."""
    recipe = _run(["make", "-n", "demo"], repo_copy).stdout
    line = next(s for s in recipe.splitlines() if s.startswith(".venv/bin/snakemake "))
    assert line in {c.text for c in COMMANDS if c.file == "README.md"}


def test_a_broken_readme_line_fails_naming_its_file_and_line(repo_copy, tmp_path):
    """Moving `all` behind `--configfile config/demo.yaml` (which takes several files) in
    a copy of the README is caught, with the README's line number."""
    good = "snakemake --cores 2 --configfile=config/demo.yaml all"
    bad = "snakemake --cores 2 --configfile config/demo.yaml all"
    readme = (REPO / "README.md").read_text()
    assert f"`{good}`" in readme
    (tmp_path / "README.md").write_text(readme.replace(f"`{good}`", f"`{bad}`"))
    shutil.copy2(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    broken = [c for c in collect(tmp_path) if c.text == bad]
    assert broken
    line = next(i for i, t in enumerate(readme.splitlines(), 1) if f"`{good}`" in t)
    assert broken[0].where == f"README.md:{line}"
    with pytest.raises(AssertionError, match=rf"README\.md:{line}: `{re.escape(bad)}`"):
        check(broken[0], repo_copy)


def demo_trials_per_model(root: Path) -> dict[str, int]:
    """Trials per model family of ``config/demo.yaml``'s experiments."""
    experiments = yaml.safe_load((root / "config" / "demo.yaml").read_text())["experiments"]
    per_model: dict[str, int] = {}
    for experiment in experiments.values():
        model = experiment["model"]
        per_model[model] = per_model.get(model, 0) + experiment["trials"]
    return per_model


@pytest.mark.slow
def test_make_demo_as_documented_builds_table2_and_every_figure(tmp_path):
    """`make demo` exactly as the Quick start says, in a fresh copy whose .venv is this
    suite's (a few minutes on 2 cores): Table 2 and all 13 figures in runs/demo/results/."""
    root = copy_repo(tmp_path / "repo")
    # .venv is set up: make must not install anything into this suite's environment
    assert _run(["make", "-q", "setup"], root).returncode == 0
    proc = subprocess.run(
        ["timeout", "-k", "10", "1500", "make", "demo"],
        cwd=root,
        env={**os.environ, "PYTHONPATH": ""},
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    results = root / "runs" / "demo" / "results"
    assert "runs/demo/results/tables/table2.md" in proc.stdout  # where make says it wrote
    assert len(PAPER_FIGURES) == 13
    # every figure of the demo's model families (imported zoos' figures are not the demo's)
    demo_models = ("dnn", "cnn", "vit", "smallcnn")
    assert {f.name for f in PAPER_FIGURES} <= set(figures_for(demo_models))
    for figure in figures_for(demo_models).values():
        for ext in ("pdf", "png"):
            assert (results / "figures" / f"{figure.name}.{ext}").stat().st_size > 1000
    table = (results / "tables" / "table2.md").read_text()
    trials: dict[str, int] = {}  # every trial of config/demo.yaml in exactly one group
    for model, n in re.findall(
        r"^\| (\w+) \| (?:non|low|mid|high|between) \| (\d+) \|", table, re.M
    ):
        trials[model] = trials.get(model, 0) + int(n)
    assert trials == demo_trials_per_model(root), table
    # the Small CNNs' training varies: Table 2 gives each group's settings
    assert "Training settings per group" in table, table
    for analysis in (
        *(
            f"features/{e}.parquet"
            for e in ("dnn_digits", "cnn_digits", "vit_digits", "smallcnn_digits")
        ),
        "claims/claims.md",
        "predict/predict.md",
        "predict/dnn_digits.early.csv",
    ):
        assert (results / analysis).stat().st_size > 100, analysis
    assert not (root / "results").exists(), "the demo wrote outside its run directory"
    run_documented_lines_on_the_demo(root)


def run_documented_lines_on_the_demo(root: Path) -> None:
    """The documented `weightzoo` lines and the report line read the demo's outputs: after
    `make demo` they run for real (not only with --help), exactly as written."""
    lines = [
        c
        for c in collect(root)
        if c.program == "weightzoo" or (c.program == "snakemake" and "--report" in c.text)
    ]
    lines = [c for c in lines if "demo" in c.text]
    assert any(c.program == "weightzoo" for c in lines), "no documented weightzoo line"
    for command in lines:
        argv = command.argv
        if "|" in argv:  # `weightzoo trials ... | head`: the documented program's part
            argv = argv[: argv.index("|")]
        if command.program == "weightzoo":
            argv = [str(VENV_BIN / "weightzoo"), *argv[1:]]
        else:
            argv = [str(VENV_BIN / "snakemake"), *argv[1:]]
        proc = _run(argv, root, {"PYTHONPATH": ""})
        if proc.returncode != 0:
            _fail(command.where, command.text, "fails on the demo's outputs", proc)
    assert (root / "runs" / "demo" / "report.html").stat().st_size > 100_000


def test_console_script_lines_run_with_help_and_their_options_must_exist(tmp_path):
    """A `weightzoo ...` line runs the pyproject.toml entry point of the copy's package with
    `--help`; an option that its help does not list fails."""
    (tmp_path / "pyproject.toml").write_text('[project.scripts]\nweightzoo = "fakecli:main"\n')
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "fakecli.py").write_text(
        "import argparse\n"
        "def main():\n"
        "    parser = argparse.ArgumentParser()\n"
        "    info = parser.add_subparsers(dest='command').add_parser('info')\n"
        "    info.add_argument('zoo')\n"
        "    info.add_argument('--groups')\n"
        "    parser.parse_args()\n"
    )
    (tmp_path / "README.md").write_text(
        "| look | `weightzoo info ZOO.h5 --groups g.csv` |\n\n"
        "```bash\nweightzoo info ZOO.h5 --format csv\n```\n"
    )
    good, bad = collect(tmp_path)
    assert (good.where, bad.where) == ("README.md:1", "README.md:4")
    check(good, tmp_path)
    with pytest.raises(AssertionError, match=r"README\.md:4: .*\['--format'\]"):
        check(bad, tmp_path)
