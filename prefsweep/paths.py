"""Every path of an experiment and every model id: the one place that maps cells to files.

The workflow's rules, the scripts' documented commands and the tests build paths through
:class:`Layout`, so a cell (arm, matching, size, seed, step) always lives at the same place and
has the same model id. Called with wildcard strings (``layout.series_pairs("{arm}", "{matching}",
"{size}")``) the same functions give the rules' patterns.

Map of ``results/<experiment>/`` (the README's "Where outputs go" table is checked against this list by
``tests/e2e/test_workflow.py``: every file of a real run matches a row, every row marked
``always`` is produced by it):

    data/ballots.jsonl                                   normalized ballots, one prompt a line
    data/split.json                                      held-out eval prompts, seeded prompt order
    data/pool/{arm}.parquet                              every pair an arm's rule gives, training prompts
    data/{arm}/{matching}/n{size}/pairs.parquet          a series cell (DPO's training data)
    data/{arm}/{matching}/n{size}/manifest.json          its size, prompts, sha256, counts and rule statistics
    data/sft.jsonl                                       SFT corpus
    data/pretrain.jsonl                                  the tiny base model's pretraining text (tiny preset only)
    data/eval_pairs/{arm}.parquet                        an arm's pairs on the held-out prompts
    data/eval_pairs/by_group.parquet                     each voter group's majority pairs on them
    eval/question.jsonl                                  FastChat questions (held-out prompts)
    eval/reference_answer/reference.jsonl                best response of each question
    train/{run}/final/                                   a model: run is base, sft, baseline-{name}
                                                         or dpo/{arm}/{matching}/n{size}/seed{seed}
                                                         (dpo/{init}/{arm}/... when dpo.init is a list)
    train/{run}/checkpoints/checkpoint-{step}/           kept checkpoints of a training run
    train/{run}/checkpoints/fingerprint.json             what they were trained from (resume check)
    train/{run}/checkpoints/README.md                    the model card TRL writes for the run
    train/evaluated_checkpoints.json                     kept checkpoints that get a model id (the DAG's one
                                                         Snakemake checkpoint)
    ref_logps/{arm}.parquet                              reference log-probs, once per arm
                                                         (ref_logps/{init}/{arm}.parquet: dpo.init a list)
    hf/{model_id}/                                       self-contained HF export (+ provenance.json)
    eval/model_answer/{model_id}.jsonl                   FastChat answers
    eval/model_judgment/{judge}_pair/{model_id}.jsonl    FastChat pairwise judgments vs the baseline
    eval/judge_cache/                                    LLM judge responses (llm judge only)
    eval/pair_accuracy/{model_id}.json                   held-out preference accuracy of a model
    eval/{table}.csv                                     tables: win_rates, win_rates_groups,
                                                         arm_differences, pair_accuracy,
                                                         pair_accuracy_groups, evolution,
                                                         evolution_groups, evolution_differences,
                                                         welfare (electorate judge)
    plots/{figure}.{format}                              figures (plots.formats)
    plots/{figure}.csv                                   the values each figure plots
    plots/done.json                                      what the plots job wrote
    benchmarks/{path}.tsv                                Snakemake benchmark of a long job
    wandb/                                               wandb runs (wandb.mode offline/online only)
    report.html                                          the Snakemake report (make run only)

Logs mirror output paths under ``logs/<experiment>/`` (:meth:`Layout.log`).

Arms (:func:`arm_rules`): ``maj`` and one arm per aggregation rule. ``sc.rule`` a string (the
original form) gives one rule arm named ``sc``; a list gives one arm per rule, named by the
rule (``borda``, ``copeland``, ``maximal_lottery``, ...). Inits (:func:`dpo_inits`): ``dpo.init``
a string (``sft`` or ``base``) keeps the ids and paths below without an init; a list puts the
init into every DPO run's path (``dpo/{init}/...``) and id (``dpo-{init}-...``).

Model ids (FastChat's file-name ids):
    base, sft                               the base and the common SFT model (always evaluated)
    dpo-{arm}-{matching}-n{size}-seed{seed} a DPO run; matching is "shared" for the reference arm
    dpo-{init}-{arm}-...-seed{seed}         the same when dpo.init is a list
    dpo-...-seed{seed}-step{step}           a kept checkpoint of that run (not its last step:
                                            the final model stands for that one)
    baseline-{name}                         a baseline model named in the config
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import NamedTuple

#: The majority arm; every other arm is an aggregation rule's (:func:`arm_rules`).
MAJ = "maj"
#: Arm name of the one rule of a scalar ``sc.rule`` (the original two-arm form).
SC = "sc"
#: DPO init models.
INITS = ("sft", "base")
MATCHINGS = ("prompt", "size")
#: The reference arm's series do not depend on matching: stored and trained once, as "shared".
SHARED = "shared"
RESULTS = "results"
LOGS = "logs"

MODEL_ID_RE = re.compile(
    r"^dpo-(?:(?P<init>sft|base)-)?(?P<arm>[a-z][a-z0-9_]*)-(?P<matching>[a-z]+)-n(?P<size>\d+)-seed(?P<seed>\d+)(?:-step(?P<step>\d+))?$"
)


class Layout:
    """Paths of one experiment, relative to the working directory (``results/<experiment>/``).

    Arguments may be values or wildcard strings such as ``"{arm}"``; every method returns a
    string so the result is usable as a Snakemake input/output pattern as it is.
    """

    def __init__(self, experiment: str, results: str = RESULTS, logs: str = LOGS) -> None:
        self.experiment = experiment
        self.root = f"{results}/{experiment}"
        self.logs = f"{logs}/{experiment}"

    # -- data -------------------------------------------------------------------------------
    def ballots(self) -> str:
        return f"{self.root}/data/ballots.jsonl"

    def split(self) -> str:
        return f"{self.root}/data/split.json"

    def pool(self, arm) -> str:
        return f"{self.root}/data/pool/{arm}.parquet"

    def eval_pairs(self, arm) -> str:
        return f"{self.root}/data/eval_pairs/{arm}.parquet"

    def eval_group_pairs(self) -> str:
        return f"{self.root}/data/eval_pairs/by_group.parquet"

    def series_dir(self, arm, matching, size) -> str:
        return f"{self.root}/data/{arm}/{matching}/n{size}"

    def series_pairs(self, arm, matching, size) -> str:
        return f"{self.series_dir(arm, matching, size)}/pairs.parquet"

    def series_manifest(self, arm, matching, size) -> str:
        return f"{self.series_dir(arm, matching, size)}/manifest.json"

    def sft_corpus(self) -> str:
        return f"{self.root}/data/sft.jsonl"

    def pretrain_corpus(self) -> str:
        return f"{self.root}/data/pretrain.jsonl"

    def questions(self) -> str:
        return f"{self.root}/eval/question.jsonl"

    def reference_answers(self) -> str:
        return f"{self.root}/eval/reference_answer/reference.jsonl"

    # -- training ---------------------------------------------------------------------------
    @staticmethod
    def dpo_run(arm, matching, size, seed, init=None) -> str:
        """Run name of a DPO cell (a path fragment under ``train/``); ``init`` only when
        ``dpo.init`` is a list (:func:`dpo_inits`)."""
        prefix = "dpo" if init is None else f"dpo/{init}"
        return f"{prefix}/{arm}/{matching}/n{size}/seed{seed}"

    def run_dir(self, run: str) -> str:
        return f"{self.root}/train/{run}"

    def model(self, run: str) -> str:
        """The finished model of a run (``base``, ``sft``, ``baseline-{name}``, a DPO run)."""
        return f"{self.run_dir(run)}/final"

    def checkpoints(self, run: str) -> str:
        return f"{self.run_dir(run)}/checkpoints"

    def checkpoint(self, run: str, step) -> str:
        return f"{self.checkpoints(run)}/checkpoint-{step}"

    def dpo_model(self, arm, matching, size, seed, init=None) -> str:
        return self.model(self.dpo_run(arm, matching, size, seed, init))

    def evaluated_checkpoints(self) -> str:
        """The kept checkpoints of the finished DPO runs that get their own model id (rule
        ``evaluated_checkpoints``, the workflow's one Snakemake checkpoint)."""
        return f"{self.root}/train/evaluated_checkpoints.json"

    def ref_logps(self, arm, init=None) -> str:
        return f"{self.root}/ref_logps/{arm}.parquet" if init is None else f"{self.root}/ref_logps/{init}/{arm}.parquet"

    # -- evaluation -------------------------------------------------------------------------
    def export(self, model_id) -> str:
        return f"{self.root}/hf/{model_id}"

    def answers(self, model_id) -> str:
        return f"{self.root}/eval/model_answer/{model_id}.jsonl"

    def judgment(self, judge, model_id) -> str:
        return f"{self.root}/eval/model_judgment/{judge}_pair/{model_id}.jsonl"

    def judge_cache(self) -> str:
        return f"{self.root}/eval/judge_cache"

    def pair_accuracy(self, model_id) -> str:
        return f"{self.root}/eval/pair_accuracy/{model_id}.json"

    def table(self, name: str) -> str:
        return f"{self.root}/eval/{name}.csv"

    def plot(self, figure, fmt) -> str:
        return f"{self.root}/plots/{figure}.{fmt}"

    def plots_done(self) -> str:
        return f"{self.root}/plots/done.json"

    def wandb_dir(self) -> str:
        return f"{self.root}/wandb"

    def report(self) -> str:
        return f"{self.root}/report.html"

    # -- records of jobs --------------------------------------------------------------------
    def log(self, output: str) -> str:
        """Log of the job writing ``output``: the same path under ``logs/``, ending ``.log``."""
        return f"{self.logs}/{self._relative(output)}.log"

    def benchmark(self, output: str) -> str:
        return f"{self.root}/benchmarks/{self._relative(output)}.tsv"

    def _relative(self, output: str) -> str:
        if not output.startswith(self.root + "/"):
            raise ValueError(f"{output!r} is not under {self.root}/")
        rel = output[len(self.root) + 1:]
        rel = re.sub(r"/final$", "", rel)
        return re.sub(r"\.(jsonl|json|parquet|csv)$", "", rel)


def layout(config: dict) -> Layout:
    return Layout(config["experiment"])


def data_matching(arm: str, matching: str, reference_arm: str) -> str:
    """Matching under which a series is stored: ``shared`` for the reference arm."""
    return SHARED if arm == reference_arm else matching


def sizes(config: dict) -> list[int]:
    """Series sizes that get a DPO run (size 0 is the zero point, the init model itself)."""
    return [int(s) for s in config["data"]["sizes"] if s > 0]


def arm_rules(config: dict) -> dict[str, str]:
    """Rule arms of an experiment: arm name -> ``pref_voting`` rule name, in config order.

    ``sc.rule`` a string (the original form): one arm named ``sc`` (ids and paths as before);
    a list: one arm per rule, named by the rule as the user spelled it (``schulze`` stays
    ``schulze``, though pref_voting calls it ``beat_path``)."""
    rule = config["sc"]["rule"]
    if isinstance(rule, str):
        return {SC: rule}
    return {str(r): str(r) for r in rule}


def arm_names(config: dict) -> list[str]:
    """Every arm: ``maj`` first, then the rule arms (:func:`arm_rules`)."""
    return [MAJ, *arm_rules(config)]


def arm_rule(config: dict, arm: str) -> str | None:
    """The rule of ``arm`` (None for ``maj``); ``ValueError`` naming the arms for another name."""
    if arm == MAJ:
        return None
    rules = arm_rules(config)
    if arm not in rules:
        raise ValueError(f"arm {arm!r}: not an arm of this config (arms: {', '.join(arm_names(config))})")
    return rules[arm]


def multi_init(config: dict) -> bool:
    """``dpo.init`` is a list: the init is a sweep dimension, in every DPO path and id."""
    return isinstance(config["dpo"]["init"], (list, tuple))


def init_models(config: dict) -> list[str]:
    """The DPO init models (``sft``/``base``) in config order."""
    init = config["dpo"]["init"]
    return [str(i) for i in init] if multi_init(config) else [str(init)]


def dpo_inits(config: dict) -> list[str | None]:
    """The ``init`` argument of the DPO paths and ids: the init models when ``dpo.init`` is a
    list, ``[None]`` (no init in paths or ids) when it is a string."""
    return list(init_models(config)) if multi_init(config) else [None]


def series_cells(config: dict) -> list[tuple[str, str, int]]:
    """Distinct (arm, data matching, size>0) series of an experiment, in a stable order."""
    data = config["data"]
    ref = data["reference_arm"]
    cells: list[tuple[str, str, int]] = []
    for arm in arm_names(config):
        for matching in data["matchings"]:
            m = data_matching(arm, matching, ref)
            for size in sizes(config):
                if (arm, m, size) not in cells:
                    cells.append((arm, m, size))
    return cells


def arm_matchings(config: dict, arm: str) -> list[str]:
    """Data matchings under which an arm's series are stored."""
    ref = config["data"]["reference_arm"]
    return sorted({data_matching(arm, m, ref) for m in config["data"]["matchings"]})


class DpoCell(NamedTuple):
    """One DPO run; ``init`` is None when ``dpo.init`` is a string (:func:`dpo_inits`).
    ``Layout.dpo_model(*cell)`` is its model directory."""

    arm: str
    matching: str
    size: int
    seed: int
    init: str | None = None

    @property
    def model_id(self) -> str:
        return dpo_model_id(self.arm, self.matching, self.size, self.seed, init=self.init)


def dpo_cells(config: dict) -> list[DpoCell]:
    """Every DPO run: init x (arm, data matching, size) x seed."""
    return [DpoCell(arm, m, size, int(seed), init) for init in dpo_inits(config)
            for arm, m, size in series_cells(config) for seed in config["dpo"]["seeds"]]


def dpo_model_id(arm: str, matching: str, size: int, seed: int, step: int | None = None,
                 init: str | None = None) -> str:
    mid = f"dpo-{arm}-{matching}-n{size}-seed{seed}" if init is None else f"dpo-{init}-{arm}-{matching}-n{size}-seed{seed}"
    return mid if step is None else f"{mid}-step{step}"


@dataclass(frozen=True)
class ModelCell:
    """What a model id says about the model (``init`` only in the ids of a list ``dpo.init``)."""

    model_id: str
    kind: str  # base | sft | dpo | checkpoint | baseline
    arm: str | None = None
    matching: str | None = None
    size: int | None = None
    seed: int | None = None
    step: int | None = None
    baseline: str | None = None
    init: str | None = None

    @property
    def run(self) -> str:
        """The training run (see :class:`Layout`) whose model or checkpoint this id names."""
        if self.kind in ("dpo", "checkpoint"):
            return Layout.dpo_run(self.arm, self.matching, self.size, self.seed, self.init)
        return self.model_id


def parse_model_id(model_id: str) -> ModelCell:
    """Inverse of the id functions; raises ``ValueError`` for an id of no known form."""
    if model_id in ("base", "sft"):
        return ModelCell(model_id, model_id)
    if model_id.startswith("baseline-") and len(model_id) > len("baseline-"):
        return ModelCell(model_id, "baseline", baseline=model_id[len("baseline-"):])
    m = MODEL_ID_RE.match(model_id)
    if not m:
        raise ValueError(
            f"model id {model_id!r}: expected base, sft, baseline-<name> or "
            "dpo-[<init>-]<arm>-<matching>-n<size>-seed<seed>[-step<step>]"
        )
    step = m["step"]
    return ModelCell(
        model_id,
        "checkpoint" if step else "dpo",
        arm=m["arm"],
        matching=m["matching"],
        size=int(m["size"]),
        seed=int(m["seed"]),
        step=int(step) if step else None,
        init=m["init"],
    )


def model_init(config: dict, cell: ModelCell) -> str:
    """The init model (``sft``/``base``) a DPO model or checkpoint was trained from."""
    return cell.init or init_models(config)[0]


def zero_point_id(config: dict) -> str:
    """Size 0 is the DPO init model itself: ``sft`` or ``base``; with a list ``dpo.init`` the
    first one, which is also the comparison baseline under ``eval.baseline: zero`` (every init
    model is the zero point of its own lines, :func:`init_models`)."""
    return init_models(config)[0]


def final_model_ids(config: dict) -> list[str]:
    """Every final model of the experiment: base, SFT (both always, whatever the init), DPO
    runs, baselines."""
    ids = ["sft", "base"]
    ids += [cell.model_id for cell in dpo_cells(config)]
    ids += [f"baseline-{b['name']}" for b in config["eval"]["baselines"]]
    return list(dict.fromkeys(ids))


def judged_model_ids(config: dict) -> list[str]:
    """Final models judged against the baseline: every final model, less the zero point when
    ``eval.baseline`` is ``zero`` (it is the baseline itself, win rate 0.5 by definition)."""
    ids = final_model_ids(config)
    if config["eval"]["baseline"] == "zero":
        ids = [m for m in ids if m != zero_point_id(config)]
    return ids


def local_fingerprint(path: str | None) -> str | None:
    """A cheap fingerprint of a user's local file or directory (names, sizes, mtimes), or None
    when ``path`` is not on this machine (a hub id). The workflow puts it into the params of the
    jobs that read the path, so editing or replacing the data reruns them; hashing every byte of
    a multi-GB model at each DAG build would cost minutes."""
    import hashlib
    import os

    if not path or not os.path.exists(path):
        return None
    entries = []
    for root, dirs, files in os.walk(path):
        dirs.sort()
        for name in sorted(files):
            full = os.path.join(root, name)
            st = os.stat(full)
            entries.append(f"{os.path.relpath(full, path)}\t{st.st_size}\t{st.st_mtime_ns}")
    if os.path.isfile(path):
        st = os.stat(path)
        entries.append(f"\t{st.st_size}\t{st.st_mtime_ns}")
    return hashlib.sha256("\n".join(entries).encode()).hexdigest()
