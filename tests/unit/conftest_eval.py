"""Fixtures of the eval tests (conversion, answers, judges, win rates).

Not a conftest.py (that one belongs to the whole suite): test modules import the fixtures they
use, e.g. ``from conftest_eval import tiny_model_dir  # noqa: F401``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

SENTENCES = [
    "Human: how do I bake bread? Assistant: Mix flour, water and yeast, then bake it.",
    "Please be polite and thank you kindly for the detailed answer.",
    "Fun fact: why did the chicken cross the road? To get to the other side, haha!",
    "Short answer. Long detailed explanation with 3 examples, for example this one.",
    "Great question, happy to help. Hope this helps, good luck!",
]

#: A model small enough to build, save and generate with in well under a second.
TINY = {
    "vocab_size": 300, "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4,
    "intermediate_size": 64, "max_position_embeddings": 128,
}


#: Init std of the test model. At GPT-NeoX's default 0.02 a random model's top two next-token
#: logits differ by ~0.01, so float32 rounding differences between equivalent kernels (attention
#: mask passed or not, batch shape) flip greedy tokens; 0.2 gives peaked distributions like a
#: trained model's, and greedy comparisons test the algorithm rather than rounding.
INIT_STD = 0.2


def make_tiny(seed: int = 0):
    """(model, tokenizer) of the tiny GPT-NeoX: byte-level BPE (vocab 300) + random weights."""
    import torch
    from transformers import GPTNeoXForCausalLM

    from prefsweep.train.tiny import tiny_config, train_tokenizer

    tok = train_tokenizer(SENTENCES * 4, vocab_size=TINY["vocab_size"])
    config = tiny_config(tok, TINY)
    config.initializer_range = INIT_STD
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = GPTNeoXForCausalLM(config)
    model.generation_config.eos_token_id = tok.eos_token_id
    model.generation_config.pad_token_id = tok.pad_token_id
    return model, tok


def save_tiny(path: Path, seed: int = 0) -> Path:
    model, tok = make_tiny(seed)
    model.save_pretrained(str(path))
    tok.save_pretrained(str(path))
    return path


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A saved tiny HF model directory (config, safetensors, tokenizer)."""
    return save_tiny(tmp_path_factory.mktemp("tiny") / "model")


def load_script(name: str):
    """Import ``scripts/{name}.py`` as a module (scripts/ is not a package)."""
    import importlib.util

    path = Path(__file__).resolve().parents[2] / "scripts" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"prefsweep_script_{name}", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


# --------------------------------------------------------------------------------------------
# A small evaluated experiment on disk, written by the project's own writers


#: Eval questions of the small run (FastChat question.jsonl records).
N_QUESTIONS = 8


def _answer(model_id: str, qi: int, n_sentences: int) -> str:
    """A deterministic answer of ``model_id`` to question ``qi``: ``n_sentences`` of SENTENCES."""
    import zlib

    import numpy as np

    rng = np.random.default_rng(zlib.crc32(f"{model_id}/{qi}".encode()))
    return " ".join(SENTENCES[i] for i in rng.choice(len(SENTENCES), size=n_sentences, replace=False))


def write_answers(path: Path, model_id: str, n_sentences: int, n_questions: int = N_QUESTIONS) -> Path:
    """A FastChat answer file (``{model_id}.jsonl``: question_id, answer_id, model_id, choices, tstamp)."""
    from prefsweep.io import atomic_write_jsonl

    atomic_write_jsonl(path, [
        {"question_id": f"q{i}", "answer_id": f"{model_id}-{i}", "model_id": model_id,
         "choices": [{"index": 0, "turns": [_answer(model_id, i, n_sentences)]}], "tstamp": 0.0}
        for i in range(n_questions)])
    return path


class EvalRun:
    """The inputs of the win-rate step for a small experiment, as the workflow lays them out.

    Built from the default config (``tests.conftest.load_config()``, ``eval.baseline`` as
    given): every series cell of the config and every DPO seed has a final model whose
    ``run_info.json`` is written by ``prefsweep.io.save_run_info`` with the ``job`` and
    ``global_step`` fields ``scripts/dpo.py`` writes (final step ``size // 8``) and kept
    checkpoints at half the final step and at the final step itself (the latter the same model as
    the final one); series manifests come from ``prefsweep.data.series.series_manifest``; answers are
    FastChat answer files (larger series give longer answers); judgments are written by
    ``prefsweep.eval.judges.electorate.judge_pairs`` with the config's real electorate.
    """

    def __init__(self, root: Path, baseline: str = "zero"):
        import pyarrow as pa

        from prefsweep.config import job_config
        from prefsweep.io import atomic_write_json, atomic_write_jsonl, save_run_info
        from prefsweep.eval.judges.electorate import electorate_from_config, judge_pairs
        from prefsweep.paths import dpo_model_id, final_model_ids, parse_model_id, series_cells, zero_point_id
        from prefsweep.data.series import series_manifest
        from tests.conftest import load_config

        self.root = root
        cfg = load_config()
        cfg["eval"]["baseline"] = baseline
        self.config = cfg
        self.zero = zero_point_id(cfg)
        ev = root / "eval"
        self.questions = ev / "question.jsonl"
        atomic_write_jsonl(self.questions, [
            {"question_id": f"q{i}", "category": "c", "turns": [f"question {i}: say something helpful"]}
            for i in range(N_QUESTIONS)])
        # The electorate's largest group likes short answers: longer training, shorter answers.
        sizes = sorted(s for s in cfg["data"]["sizes"] if s > 0)
        length = {0: 4, **{s: max(1, 3 - k) for k, s in enumerate(sizes)}}

        self.manifests: list[Path] = []
        self.run_infos: list[Path] = []
        self.final_steps: dict[str, int] = {}
        self.checkpoints: list[str] = []
        self.answers: dict[str, Path] = {}
        for arm, matching, size in series_cells(cfg):
            n_pairs = size if matching != "prompt" else size // 5
            table = pa.table({"prompt_id": [f"p{i // 2}" for i in range(n_pairs)], "topic": ["t"] * n_pairs,
                              "cycle": [False] * n_pairs, "tie_broken": [False] * n_pairs,
                              "condorcet": [True] * n_pairs, "chosen_condorcet": [True] * n_pairs})
            path = root / "data" / arm / matching / f"n{size}" / "manifest.json"
            atomic_write_json(path, series_manifest(table, arm, matching, size, "0" * 64))
            self.manifests.append(path)
            for seed in cfg["dpo"]["seeds"]:
                final = dpo_model_id(arm, matching, size, seed)
                step = size // 8
                run = root / "dpo" / arm / matching / f"n{size}" / f"seed{seed}" / "final"
                run.mkdir(parents=True)
                job = {"arm": arm, "matching": matching, "size": size, "seed": seed}
                self.run_infos.append(save_run_info(run, {}, step="dpo", job=job, global_step=step,
                                                    wandb_run_id=None))
                self.final_steps[final] = step
                self.checkpoints += [dpo_model_id(arm, matching, size, seed, s) for s in (step // 2, step)]

        ids = list(dict.fromkeys(final_model_ids(cfg) + self.checkpoints))
        if baseline == "reference":
            ids.append("reference")
        for mid in ids:
            cell = parse_model_id(mid) if mid != "reference" else None
            n = 2 if cell is None else length[cell.size or 0] + (1 if cell.kind == "checkpoint" else 0)
            self.answers[mid] = write_answers(ev / "model_answer" / f"{mid}.jsonl", mid, min(n, len(SENTENCES)))
        self.baseline = self.zero if baseline == "zero" else "reference"

        electorate = electorate_from_config(job_config(cfg, "judge"))
        from prefsweep.eval.generate import read_answers
        from prefsweep.io import read_jsonl

        questions = read_jsonl(self.questions)
        base = read_answers(self.answers[self.baseline])
        self.judgments: dict[str, Path] = {}
        for mid in ids:
            if mid in (self.baseline, "reference"):
                continue
            path = ev / "model_judgment" / "electorate_pair" / f"{mid}.jsonl"
            atomic_write_jsonl(path, judge_pairs(electorate, questions, read_answers(self.answers[mid]), base, mid,
                                                 self.baseline, tstamp=0.0))
            self.judgments[mid] = path

    @property
    def finals(self) -> list[str]:
        """Judged final models (what the win_rates rule judges)."""
        return [m for m in self.judgments if m not in self.checkpoints]

    def argv(self, models: list[str], out_dir: Path, name: str = "win_rates",
             config_step: str = "win_rates") -> list[str]:
        """``scripts/win_rates.py`` arguments for the judged ``models`` (answers of the table's
        models and the baseline, every manifest, the run_info of every final DPO model)."""
        import json

        from prefsweep.config import job_config
        from prefsweep.paths import parse_model_id

        answers = [self.answers[m] for m in dict.fromkeys([*models, self.zero, self.baseline])]
        finals = [m for m in models if parse_model_id(m).kind == "dpo"]
        runs = [p for p, m in zip(self.run_infos, self.final_steps) if m in finals]
        stem = {"win_rates": ("win_rates", "arm_differences", "win_rates_groups"),
                "evolution": ("evolution", "evolution_differences", "evolution_groups")}[name]
        return ["--config-json", json.dumps(job_config(self.config, config_step)),
                "--judgments", *map(str, (self.judgments[m] for m in models)),
                "--answers", *map(str, answers), "--manifests", *map(str, self.manifests),
                "--run-info", *map(str, runs), "--questions", str(self.questions),
                "--out", str(out_dir / f"{stem[0]}.csv"), "--diff-out", str(out_dir / f"{stem[1]}.csv"),
                "--groups-out", str(out_dir / f"{stem[2]}.csv"), "--no-wandb"]
