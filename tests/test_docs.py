"""The README and docs/ as a user reads them: every command they show is run by a test, every
link and repository path they name exists, and the README stays the short page it should be.

Commands are read from the fenced ```bash / ```sh / ```console blocks of README.md and the
pages under docs/ (in a console block, the lines starting ``$ ``; the lines under one are an excerpt of
its output) and from inline code spans that start with ``make`` or ``snakemake``. Lines
``export NAME=...`` are settings, not commands: they run ahead of the later commands of their
block. Every other command must be a key of :data:`COMMANDS`, which says how it is checked:

- ``Here(how)``: ``test_doc_command_runs`` runs it in a scratch clone of the repository
  (symlinks to its files; its own results/, logs/ and .snakemake/), the venv first on PATH:
  ``dry-run``: a Snakemake command, with ``-n`` added (a cluster command plans its jobs through
  profiles/slurm and submits nothing); ``make -n``: the recipe resolves, nothing runs; ``run``:
  as written (make with ``-o .venv/.installed``, so that it never reinstalls), and a console
  block's excerpt must be in its output; ``help``: ``PROGRAM --help`` lists every ``--option``
  the command uses (for programs that need the network or run for hours); ``env``: ``source
  .venv/bin/activate`` puts the venv's snakemake first on PATH.
- ``"tests/...::test_name"``: the test of that node id runs it (the test must exist).

A command in the docs that is not in the table fails ``test_every_doc_command_is_checked``,
naming its file and line; a row whose command is in no doc fails it too.
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import BIN, REPO

README = REPO / "README.md"
DOCS = REPO / "docs"
#: The README's budget: what it is, one figure, two commands, the cluster command, the map, links.
README_MAX_BYTES = 12_000
PAPER = "--configfile config/paper/base.yaml config/paper/shp.yaml"


@dataclass(frozen=True)
class Here:
    """Checked by test_doc_command_runs: ``how`` is dry-run, make -n, run, help or env; ``program``
    is what ``help`` asks for ``--help``; ``writes`` is ``(file, first characters)`` of a
    ``run`` command's output file."""

    how: str
    program: str = ""
    writes: tuple[str, str] | None = None


#: Every command of README.md and docs/*.md -> how it is checked.
COMMANDS: dict[str, Here | str] = {
    # README: the two set-up commands and the cluster command
    "make run": Here("make -n"),
    "make test": Here("make -n"),
    "source .venv/bin/activate": Here("env"),
    f"snakemake --profile profiles/slurm {PAPER}": Here("dry-run"),
    f"snakemake --profile profiles/slurm {PAPER} -n": Here("dry-run"),
    'make plan CONFIG="config/paper/base.yaml config/paper/shp.yaml"': Here("run"),
    # docs/configuration.md
    "snakemake": "tests/test_dag.py::test_default_config_dry_run_job_counts",
    "snakemake --cores 2": "tests/test_dag.py::test_default_config_dry_run_job_counts",
    "snakemake --cores 2 --configfile config/study.yaml": "tests/test_dag.py::test_study_config_dry_run_job_counts",
    "snakemake --cores 2 data_all": "tests/test_dag.py::test_partial_targets",
    "snakemake --cores 2 results/default/data/sc/size/n256/pairs.parquet": Here("dry-run"),
    "snakemake --dag > dag.dot": Here("run", writes=("dag.dot", "digraph")),
    "snakemake --report results/default/report.html": "tests/e2e/test_workflow.py::test_report",
    "snakemake --directory ../run1 --cores 2": Here("dry-run"),
    "make run CONFIG=config/study.yaml": Here("make -n"),
    "make -s dag CONFIG=config/study.yaml > dag.dot": Here("run", writes=("dag.dot", "digraph")),
    "make rerun TARGET=results/default/train/dpo/sc/size/n64/seed1/final": Here("make -n"),
    "make rerun TARGET=dpo CONFIG=config/study.yaml": Here("make -n"),
    "python scripts/rerun_fresh.py results/default/train/sft/final --dry-run -- --cores 2": Here("run"),
    # docs/judges.md
    "python -m fastchat.llm_judge.show_result --mode pairwise-baseline --baseline-model sft --input-file "
    "results/default/eval/model_judgment/electorate_pair/dpo-maj-shared-n256-seed1.jsonl":
        "tests/e2e/test_workflow.py::test_docs_show_result_command_reads_the_judgments",
    "python scripts/import_policy.py --policy policy.pt --base EleutherAI/pythia-2.8b --out models/imported":
        "tests/unit/test_convert.py::test_import_policy_script_accepts_legacy_keys",
    # docs/cluster.md
    "snakemake -n": Here("dry-run"),
    "make plan": Here("make -n"),
    "hf download EleutherAI/pythia-2.8b": Here("help", "hf download"),
    "hf download --repo-type dataset stanfordnlp/SHP --local-dir /shared/$USER/data/shp": Here("help", "hf download"),
    f'python scripts/plan.py {PAPER} --config "eval={{checkpoints: {{sizes: [64000], n_questions: 100}}, '
    'judge: {max_api_calls: 100000}}"': Here("run"),
    "make gpu-check": Here("make -n"),
    "make slurm-deps": Here("make -n"),
    # docs/outputs.md
    "make report": Here("make -n"),
    # docs/benchmarks.md
    "make bench": Here("make -n"),
    'make bench BENCH_ARGS="--only bench_dag"': Here("make -n"),
    'make bench BENCH_ARGS="--scale small"': Here("make -n"),
    "python benchmarks/bench_answers.py --device cuda": Here("help", "python benchmarks/bench_answers.py"),
    "python benchmarks/scale_stages.py --widths 64 256": Here("help", "python benchmarks/scale_stages.py"),
    "python benchmarks/memory_model.py": Here("help", "python benchmarks/memory_model.py"),
}


# -- reading the docs ----------------------------------------------------------------------------

@dataclass(frozen=True)
class DocCommand:
    """A command as a doc shows it: ``text`` without its comment, white space collapsed;
    ``setup``: the ``export`` / ``source`` lines before it in its block; ``output``: the excerpt
    of its output a console block shows."""

    text: str
    where: str
    setup: tuple[str, ...] = ()
    output: tuple[str, ...] = ()


FENCE = re.compile(r"^```\s*(\w*)\s*$")
SHELL = {"bash", "sh", "console"}
INLINE = re.compile(r"`((?:make|snakemake)(?: [^`]*)?)`")


def doc_files() -> list[Path]:
    """README.md and every page under docs/ (design notes included)."""
    return [README, *sorted(DOCS.rglob("*.md"))]


def strip_comment(line: str) -> str:
    """``line`` without a shell comment: a ``#`` that starts a word outside quotes."""
    quote = None
    for i, ch in enumerate(line):
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i]
    return line


def normalise(line: str) -> str:
    return " ".join(strip_comment(line).split())


def _logical_lines(lines: list[tuple[int, str]]) -> list[tuple[int, str]]:
    """Join backslash-continued lines; each keeps the number of its first line."""
    out, buf, start = [], "", 0
    for number, line in lines:
        if not buf:
            start = number
        if line.rstrip().endswith("\\"):
            buf += line.rstrip()[:-1] + " "
            continue
        out.append((start, buf + line))
        buf = ""
    return out + ([(start, buf)] if buf else [])


def commands_of(path: Path) -> list[DocCommand]:
    """Every command of one Markdown file, in order."""
    name = str(path.relative_to(REPO))
    found: list[DocCommand] = []
    lines = path.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        fence = FENCE.match(lines[i])
        if not fence:
            found += [DocCommand(normalise(m[1]), f"{name}:{i + 1}") for m in INLINE.finditer(lines[i])]
            i += 1
            continue
        lang, body = fence[1], []
        i += 1
        while i < len(lines) and not FENCE.match(lines[i]):
            body.append((i + 1, lines[i]))
            i += 1
        i += 1
        if lang in SHELL:
            found += block_commands(name, lang, body)
    return found


def block_commands(name: str, lang: str, body: list[tuple[int, str]]) -> list[DocCommand]:
    """The commands of one fenced shell block (console: ``$ `` lines, the rest their output)."""
    setup: list[str] = []
    found: list[DocCommand] = []
    for number, line in _logical_lines(body):
        if lang == "console" and not line.startswith("$ "):
            if found and line.strip() and line.strip() != "...":
                last = found[-1]
                found[-1] = DocCommand(last.text, last.where, last.setup, (*last.output, line))
            continue
        text = normalise(line.removeprefix("$ "))
        if not text:
            continue
        if text.startswith("export "):
            setup.append(text)
            continue
        found.append(DocCommand(text, f"{name}:{number}", tuple(setup)))
        if text.startswith("source "):
            setup.append(text)
    return found


def doc_commands() -> list[DocCommand]:
    return [c for path in doc_files() for c in commands_of(path)]


def section(text: str, heading: str) -> str:
    """The text of a ``## heading`` section, up to the next ``## ``."""
    assert f"\n## {heading}\n" in text, f"no section '## {heading}'"
    return text.split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]


def readme_output_patterns() -> list[str]:
    """The path patterns of the README's outputs table, in order."""
    rows = [line for line in section(README.read_text(), "Where outputs go").splitlines() if line.startswith("| `")]
    return [p for line in rows for p in re.findall(r"`([^`]+)`", line.split("|")[1])]


def layout_patterns() -> tuple[list[str], set[str]]:
    """The map in prefsweep/paths.py's docstring: patterns, and those not in every run."""
    import prefsweep.paths

    block = prefsweep.paths.__doc__.split("Map of", 1)[1].split("Logs mirror", 1)[0]
    patterns, optional = [], set()
    for line in block.splitlines()[3:]:
        if line.startswith("    ") and not line.startswith("     " * 2) and line.strip():
            first = line.split()[0].rstrip(",")
            patterns.append(first)
            if "only)" in line or "(make run)" in line:
                optional.add(first)
    return patterns, optional


# -- the table covers the docs ---------------------------------------------------------------------

def test_every_doc_command_is_checked():
    commands = doc_commands()
    unchecked = [f"{c.where}: {c.text}" for c in commands if c.text not in COMMANDS]
    assert not unchecked, ("commands in the docs that no test runs (add each to COMMANDS in "
                           "tests/test_docs.py, with how it is checked):\n" + "\n".join(unchecked))
    stale = sorted(set(COMMANDS) - {c.text for c in commands})
    assert not stale, f"COMMANDS rows whose command is in no doc: {stale}"


def test_every_test_named_in_the_table_exists():
    for command, check in COMMANDS.items():
        if isinstance(check, str):
            path, name = check.split("::")
            text = (REPO / path).read_text()
            assert re.search(rf"^def {re.escape(name)}\(", text, re.M), f"{check} (for `{command}`) does not exist"


# -- running the commands ----------------------------------------------------------------------

#: Not linked into the scratch clone: what a run writes there, and version control.
NOT_CLONED = {".git", "results", "logs", ".snakemake", ".pytest_cache", "gpu-check", "dag.dot"}


@pytest.fixture(scope="module")
def clone(tmp_path_factory) -> Path:
    """The repository as a user's fresh clone: a symlink to every top-level entry, nothing run yet."""
    root = tmp_path_factory.mktemp("docs") / "prefsweep"
    root.mkdir()
    for entry in REPO.iterdir():
        if entry.name not in NOT_CLONED:
            (root / entry.name).symlink_to(entry)
    return root


def command_env(activated: bool = True) -> dict[str, str]:
    """The user's shell, after `source .venv/bin/activate` (``activated``) or before it, without
    site or judge settings."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("PREFSWEEP_") and k not in ("OPENAI_API_KEY", "OPENAI_API_BASE", "VIRTUAL_ENV")}
    path = [p for p in env["PATH"].split(os.pathsep) if Path(p) != BIN]
    return {**env, "PATH": os.pathsep.join([str(BIN)] * activated + path), "HF_HUB_OFFLINE": "1"}


def as_run(text: str, check: Here) -> str:
    """The shell command that checks ``text`` (see the module docstring)."""
    if check.how == "dry-run":
        return text if re.search(r"(^| )(-n|--dry-run)( |$)", text) else f"{text} -n"
    if check.how == "make -n":
        return re.sub(r"^make ", "make -n ", text)
    if check.how == "run" and text.startswith("make "):
        return re.sub(r"^make ", "make -o .venv/.installed ", text)
    if check.how == "help":
        return f"{check.program} --help"
    if check.how == "env":
        return f"{text} && command -v snakemake"
    return text


def _cases() -> list:
    """One case per distinct shell command and set-up; the output excerpts of its repeats merged."""
    cases: dict[tuple, tuple[DocCommand, Here]] = {}
    for c in doc_commands():
        check = COMMANDS.get(c.text)
        if isinstance(check, Here):
            # `help` checks the options of each command it stands for
            key = (as_run(c.text, check), c.setup, c.text if check.how == "help" else "")
            if key in cases:
                first = cases[key][0]
                c = DocCommand(first.text, first.where, first.setup, (*first.output, *c.output))
            cases[key] = (c, check)
    return [pytest.param(c, check, id=c.where) for c, check in cases.values()]


@pytest.mark.parametrize("command, check", _cases())
def test_doc_command_runs(clone, command: DocCommand, check: Here):
    script = "\n".join(["set -e", *command.setup, as_run(command.text, check)])
    if "source .venv/bin/activate" in script and not (clone / ".venv" / "bin" / "activate").exists():
        pytest.skip("no .venv in this clone (make run or make test creates it)")
    proc = subprocess.run(["bash", "-c", script], cwd=clone, capture_output=True, text=True,
                          env=command_env(activated=check.how != "env"), timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"{command.where}: `{command.text}` failed:\n{out[-4000:]}"
    if check.how == "help":
        used = re.findall(r"(?<!\S)(--[\w-]+)", command.text)
        missing = [o for o in used if o not in proc.stdout]
        assert not missing, f"{command.where}: `{check.program} --help` lists no {missing}"
    if check.how == "env":
        found = Path(proc.stdout.strip().splitlines()[-1]).resolve()
        assert found == (clone / ".venv" / "bin" / "snakemake").resolve(), found
    lines = {" ".join(line.split()) for line in proc.stdout.splitlines()}
    missing = [line for line in command.output if " ".join(line.split()) not in lines]
    assert not missing, f"{command.where}: the output the doc shows is not what `{command.text}` prints: {missing}"
    if check.writes:
        file, start = check.writes
        assert (clone / file).read_text().startswith(start), f"{command.where}: {file} does not start with {start!r}"


# -- the README ------------------------------------------------------------------------------------

def test_readme_is_short():
    size = len(README.read_bytes())
    assert size <= README_MAX_BYTES, f"README.md is {size} bytes (at most {README_MAX_BYTES}): move text to docs/"


def _first_block(text: str) -> list[str]:
    return [normalise(line) for line in text.split("```bash\n", 1)[1].split("```", 1)[0].splitlines()]


def test_readme_shows_the_two_commands_and_the_cluster_command():
    text = README.read_text()
    assert _first_block(section(text, "Quick start")) == ["make run", "make test"]
    cluster = _first_block(section(text, "On a Slurm cluster"))
    assert len(cluster) == 3 and cluster[-1] == f"snakemake --profile profiles/slurm {PAPER}", cluster


def test_readme_figure_is_the_one_the_results_script_writes():
    """The README's one figure is the copy scripts/results_page.py makes of the default run's
    plots/win_rate_vs_pairs.png (tests/e2e/test_workflow.py runs the script on a real run)."""
    from scripts.results_page import FIGURE

    images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", README.read_text())
    assert images == [str(FIGURE.relative_to(REPO))]
    assert FIGURE.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_readme_outputs_table_is_the_layout():
    """The run half of this check is tests/e2e/test_workflow.py's."""
    patterns, _ = layout_patterns()
    assert readme_output_patterns() == patterns


# -- docs/ hang together ---------------------------------------------------------------------------

def github_anchor(heading: str) -> str:
    """GitHub's anchor of a Markdown heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", path.read_text(), flags=re.S)
    return {github_anchor(m[1]) for m in re.finditer(r"^#+ (.+)$", text, re.M)}


def test_links_and_anchors_resolve():
    broken = []
    for doc in doc_files():
        text = re.sub(r"```.*?```", "", doc.read_text(), flags=re.S)
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"[a-z]+:", target):
                continue
            file, _, anchor = target.partition("#")
            path = (doc.parent / file).resolve() if file else doc
            if not path.exists():
                broken.append(f"{doc.relative_to(REPO)}: {target} (no such file)")
            elif anchor and path.suffix == ".md" and anchor not in anchors(path):
                broken.append(f"{doc.relative_to(REPO)}: {target} (no such heading)")
    assert not broken, "\n".join(broken)


TOP = ("prefsweep/", "scripts/", "workflow/", "config/", "profiles/", "tests/", "benchmarks/", "envs/", "docs/")


def test_repository_paths_named_in_the_docs_exist():
    """A file the docs name by its path exists (patterns and run outputs aside)."""
    missing = []
    for doc in doc_files():
        for span in re.findall(r"`([^`\s]+)`", doc.read_text()):
            path = span.split("::")[0]  # a test's node id names its file
            if path.startswith(TOP) and not re.search(r"[{<*…]|/results/", path) and not (REPO / path).exists():
                missing.append(f"{doc.relative_to(REPO)}: {span}")
    assert not missing, "\n".join(missing)


def test_index_lists_every_page_and_the_readme_links_it():
    index = (DOCS / "index.md").read_text()
    pages = {str(p.relative_to(DOCS)) for p in DOCS.rglob("*.md")} - {"index.md"}
    unlisted = sorted(p for p in pages if f"]({p})" not in index)
    assert not unlisted, f"docs/index.md does not list {unlisted}"
    assert "](docs/index.md)" in README.read_text()


def test_results_page_is_written_by_its_script():
    """docs/results.md is scripts/results_page.py's output (its numbers come from a run's
    tables: tests/e2e/test_workflow.py::test_results_page_comes_from_the_tables)."""
    text = (DOCS / "results.md").read_text()
    assert "<!-- Written by `python scripts/results_page.py`" in text.splitlines()[2]
    for heading in ("## Win rates", "## Rule arm minus majority arm", "## Length and form"):
        assert heading in text


def test_no_timing_history():
    """Numbers tied to a commit belong to docs/results.md and benchmarks/RESULTS.md, which
    scripts write; hand-written pages carry none."""
    for doc in doc_files():
        if doc.name != "results.md":
            hits = re.findall(r"\b(?:commit|at) [0-9a-f]{7}\b", doc.read_text())
            assert not hits, f"{doc.relative_to(REPO)}: {hits}"
