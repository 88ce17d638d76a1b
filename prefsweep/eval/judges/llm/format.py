"""FastChat's pairwise judge format: judge prompts, prompt rendering, verdict parsing, records.

Judge prompts are FastChat ``judge_prompts.jsonl`` records ``{"name", "type": "pairwise",
"system_prompt", "prompt_template", "description", "category", "output_format"}``;
``prompt_template`` has exactly the fields ``{question}``, ``{answer_a}``, ``{answer_b}`` (one
turn, no reference). The package ships its own wording (``judge_prompts.jsonl`` beside this
module: ``prefsweep-pair-v1``); FastChat's own file (not in its wheel) can be named instead.

Rendering and parsing follow ``fastchat.llm_judge.common.run_judge_pair`` (fschat 0.2.36)
exactly: ``prompt_template.format(question=..., answer_a=..., answer_b=...)``, messages
``[system, user]``; output format ``[[A]]``: "[[A]]" in the text -> A, else "[[B]]" -> B, else
"[[C]]" -> tie, else ``error``; ``[[rating_a,rating_b]]``: scores within :data:`TIE_DELTA` are a
tie. (A test checks this module against FastChat's functions; FastChat is not imported here: it
pulls in torch and transformers.)

Records: FastChat pair-judgment records (:func:`pairwise_records`; model_1 = model under test,
model_2 = baseline; game ``g1`` shows model_1 as A, ``g2`` the baseline as A).
"""

from __future__ import annotations

import ast
import os
import re
import string
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from prefsweep.eval.judges.base import JudgeError
from prefsweep.eval.judges.llm.settings import VerdictSettings
from prefsweep.io import read_jsonl

#: The shipped prompts (``select_judge_prompt`` names it in errors when eval.judge.judge_prompts is null).
SHIPPED_PROMPTS = "prefsweep/eval/judges/llm/judge_prompts.jsonl"

# --- FastChat's parsing constants (fastchat/llm_judge/common.py, fschat 0.2.36) -------------
TWO_SCORE_PATTERN = re.compile(r"\[\[(\d+\.?\d*),\s?(\d+\.?\d*)\]\]")
TWO_SCORE_PATTERN_BACKUP = re.compile(r"\[(\d+\.?\d*),\s?(\d+\.?\d*)\]")
TIE_DELTA = 0.1
#: Game g1 shows model_1 as A; game g2 shows model_2 as A.
G1_MAP = {"A": "model_1", "B": "model_2"}
G2_MAP = {"A": "model_2", "B": "model_1"}

PAIRWISE_FORMATS = ("[[A]]", "[[rating_a,rating_b]]")
TEMPLATE_FIELDS = frozenset({"question", "answer_a", "answer_b"})


def default_judge_prompts_path() -> Path:
    return Path(str(resources.files("prefsweep.eval.judges.llm") / "judge_prompts.jsonl"))


def load_judge_prompts(path: str | os.PathLike | None = None) -> dict[str, dict]:
    """``{name: prompt record}`` from a FastChat judge_prompts.jsonl (ours when ``path`` is None)."""
    return {p["name"]: p for p in read_jsonl(path or default_judge_prompts_path())}


def check_judge_prompt(prompt: Mapping[str, Any]) -> None:
    """Raise ``JudgeError`` unless ``prompt`` is a one-turn, reference-free pairwise prompt."""
    name = prompt.get("name")
    if prompt.get("type") != "pairwise":
        raise JudgeError(f"judge prompt {name!r} has type {prompt.get('type')!r}, not 'pairwise'")
    if prompt.get("output_format") not in PAIRWISE_FORMATS:
        raise JudgeError(
            f"judge prompt {name!r}: output_format {prompt.get('output_format')!r} is not one of {PAIRWISE_FORMATS}"
        )
    used = {f for _, f, _, _ in string.Formatter().parse(prompt["prompt_template"]) if f is not None}
    if used != TEMPLATE_FIELDS:
        raise JudgeError(
            f"judge prompt {name!r}: template fields {sorted(used)}, expected {sorted(TEMPLATE_FIELDS)} "
            "(multi-turn and reference-guided prompts are not supported)"
        )


def select_judge_prompt(settings: VerdictSettings) -> dict:
    source = settings.judge_prompts or SHIPPED_PROMPTS
    prompts = load_judge_prompts(settings.judge_prompts)
    name = settings.pairwise_prompt
    if name not in prompts:
        raise JudgeError(f"{source}: judge prompt {name!r} (eval.judge.pairwise_prompt) not in the file "
                         f"(has {sorted(prompts)})")
    check_judge_prompt(prompts[name])
    return prompts[name]


def format_pair_prompt(prompt: Mapping[str, Any], question: str, answer_a: str, answer_b: str) -> str:
    return prompt["prompt_template"].format(question=question, answer_a=answer_a, answer_b=answer_b)


# --- verdict parsing (FastChat's rules) -------------------------------------------------------
def parse_pair_verdict(judgment: str, output_format: str) -> str:
    """``"A" | "B" | "tie" | "error"`` from a pairwise judgment (run_judge_pair's rules)."""
    if output_format == "[[A]]":
        if "[[A]]" in judgment:
            return "A"
        if "[[B]]" in judgment:
            return "B"
        if "[[C]]" in judgment:
            return "tie"
        return "error"
    if output_format == "[[rating_a,rating_b]]":
        match = TWO_SCORE_PATTERN.search(judgment) or TWO_SCORE_PATTERN_BACKUP.search(judgment)
        if not match:
            return "error"
        a, b = (ast.literal_eval(s.strip()) for s in match.groups())
        if abs(a - b) <= TIE_DELTA:
            return "tie"
        return "A" if a > b else "B"
    raise JudgeError(f"invalid pairwise output format: {output_format!r}")


def is_malformed(judgment: str, prompt: Mapping[str, Any]) -> bool:
    return parse_pair_verdict(judgment, prompt["output_format"]) == "error"


def usable_judgment(judgment: object) -> bool:
    """Whether a judge's text can be cached and served: a string with more than whitespace.

    An empty reply is a server fault, not a verdict (at temperature 0 an empty text would be
    served forever as ``error``), so it is neither cached nor read back from the cache.
    """
    return isinstance(judgment, str) and bool(judgment.strip())



@dataclass(frozen=True)
class JudgeRequest:
    """One chat-completion call: a question, two answers, one order."""

    key: str
    question_id: str
    order: str  # g1 | g2
    system_prompt: str
    user_prompt: str

    def messages(self) -> list[dict[str, str]]:
        # What FastChat's "chatgpt" conversation template gives via to_openai_api_messages().
        return [{"role": "system", "content": self.system_prompt},
                {"role": "user", "content": self.user_prompt}]

    @property
    def label(self) -> str:
        return f"{self.question_id} ({self.order})"


def pairwise_records(questions: list[dict], requests: list[JudgeRequest], results: Mapping[str, dict],
                     model_1: str, model_2: str, prompt: Mapping[str, Any], settings: VerdictSettings) -> list[dict]:
    """FastChat ``*_pair.jsonl`` records, in question order (as ``play_a_match_pair`` writes them)."""
    by_q = {(r.question_id, r.order): r for r in requests}
    records = []
    for q in questions:
        qid = str(q["question_id"])
        r1, r2 = by_q[(qid, "g1")], by_q[(qid, "g2")]
        e1, e2 = results[r1.key], results[r2.key]
        w1 = parse_pair_verdict(e1["judgment"], prompt["output_format"])
        w2 = parse_pair_verdict(e2["judgment"], prompt["output_format"])
        records.append({
            "question_id": q["question_id"],
            "model_1": model_1,
            "model_2": model_2,
            "g1_winner": G1_MAP.get(w1, w1),
            "g2_winner": G2_MAP.get(w2, w2),
            "judge": [settings.model, prompt["name"]],
            "g1_user_prompt": r1.user_prompt,
            "g1_judgment": e1["judgment"],
            "g2_user_prompt": r2.user_prompt,
            "g2_judgment": e2["judgment"],
            "turn": 1,
            # The time the judgment was made (cached), so a rerun writes the same bytes.
            "tstamp": max(e1["tstamp"], e2["tstamp"]),
        })
    return records
