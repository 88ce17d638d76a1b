"""What the common SFT model trains on (``sft.data``), checked against the held-out eval prompts.

``sft.data.source``:

- ``best_response``: the ``sc.rule`` winner of every training prompt
  (:func:`prefsweep.data.series.sft_corpus`; the default).
- ``jsonl``: the lab's own file ``sft.data.path``, one JSON object a line, raw text (rendered
  with ``prompt_format`` like every other stage)::

      {"prompt": "How do I keep basil alive?", "completion": "Water it ...", "id"?: "s1"}
      {"messages": [{"role": "user", "content": "..."}, {"role": "assistant", "content": "..."},
                    ...], "id"?: "s2"}

  ``messages`` alternate user / assistant, start with a user turn and end with the assistant
  turn that is the completion; earlier turns become the prompt as an HH dialogue
  (``"first question\\n\\nAssistant: answer\\n\\nHuman: next question"``, which
  ``prompt_format.style: hh`` renders as the dialogue itself). Unknown keys, other roles, empty
  texts and bytes that are not UTF-8 are errors naming the file, line and field.
- ``hh``: the chosen responses of Anthropic HH-RLHF (``path``, ``data_dir``, ``split``; as
  :func:`prefsweep.data.sources.hh.hh_rows`).

``max_examples`` keeps the first that many examples. Rows written: ``{"prompt", "completion",
"prompt_id"}`` (rendered; ``prompt_id`` is the file's ``id``, else ``sft-<line>``, or
``hh-<row>``).

**No eval prompt is trained on**: an SFT prompt whose text is that of a held-out eval prompt
after :func:`prefsweep.data.prompts.normalize_text` (case and runs of white space ignored, the same
comparison that keeps a prompt's candidates distinct) raises :class:`SftDataError` naming the
eval prompt ids and the SFT examples.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from prefsweep.config import ConfigError
from prefsweep.io import DataFileError, jsonl_lines
from prefsweep.data.prompts import normalize_text, render_completion, render_prompt

JSONL_KEYS = ("prompt", "completion", "messages", "id")
ROLES = ("user", "assistant")
DEFAULT_HH = "Anthropic/hh-rlhf"


class SftDataError(ValueError):
    """SFT data that cannot be used; the message names the file, the example and the field."""


def messages_to_pair(messages: Any, fail) -> tuple[str, str]:
    """(raw prompt, completion) of a chat ``messages`` list (module doc); ``fail(field, msg)``
    builds the error."""
    if not isinstance(messages, list) or len(messages) < 2:
        raise fail("messages", "expected a list of at least a user and an assistant message")
    for i, m in enumerate(messages):
        role = ROLES[i % 2]
        if not isinstance(m, dict) or set(m) != {"role", "content"}:
            raise fail(f"messages[{i}]", 'expected {"role": ..., "content": ...}')
        if m["role"] != role:
            raise fail(f"messages[{i}].role", f"expected {role!r} (turns alternate user, assistant), got {m['role']!r}")
        if not isinstance(m["content"], str) or not m["content"].strip():
            raise fail(f"messages[{i}].content", "expected a non-empty string")
    if len(messages) % 2:
        raise fail(f"messages[{len(messages) - 1}]", "expected the last message to be the assistant's (the completion)")
    turns = [m["content"] for m in messages[:-1]]
    prompt = turns[0]
    for i in range(1, len(turns), 2):
        prompt += f"\n\nAssistant: {turns[i]}\n\nHuman: {turns[i + 1]}"
    return prompt, messages[-1]["content"]


def read_sft_jsonl(path: str | os.PathLike) -> list[dict[str, str]]:
    """Raw examples ``{"id", "prompt", "completion", "where"}`` of an SFT jsonl file (module doc)."""
    out: list[dict[str, str]] = []
    try:
        for lineno, line in jsonl_lines(path):
            def fail(field: str, msg: str, lineno: int = lineno) -> SftDataError:
                return SftDataError(f"{path}: line {lineno}: {field}: {msg}")

            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise fail("record", f"not valid JSON ({exc.msg} at column {exc.colno}); expected one object a line") from None
            if not isinstance(row, dict):
                raise fail("record", f"expected a JSON object, got {type(row).__name__}")
            extra = [k for k in row if k not in JSONL_KEYS]
            if extra:
                raise fail(extra[0], f"unknown field (allowed: {', '.join(JSONL_KEYS)})")
            if "messages" in row:
                if "prompt" in row or "completion" in row:
                    raise fail("messages", "expected either messages or prompt + completion, not both")
                prompt, completion = messages_to_pair(row["messages"], fail)
            else:
                for key in ("prompt", "completion"):
                    if not isinstance(row.get(key), str) or not row[key].strip():
                        raise fail(key, "expected a non-empty string (or give messages instead)")
                prompt, completion = row["prompt"], row["completion"]
            sid = row.get("id", f"sft-{lineno}")
            if not isinstance(sid, str) or not sid:
                raise fail("id", f"expected a non-empty string, got {sid!r}")
            out.append({"id": sid, "prompt": prompt, "completion": completion, "where": f"line {lineno}"})
    except DataFileError as exc:
        raise SftDataError(str(exc)) from None
    except FileNotFoundError:
        raise SftDataError(f"{path}: no such file; expected the SFT data file (sft.data.path)") from None
    if not out:
        raise SftDataError(f"{path}: no examples (empty file); expected one JSON object a line (sft.data.path)")
    return out


def hh_examples(spec: Mapping[str, Any]) -> list[dict[str, str]]:
    """Raw examples of HH-RLHF's chosen responses (``sft.data`` with ``source: hh``)."""
    from prefsweep.data.sources.hh import hh_rows

    hh = {"path": spec["path"] or DEFAULT_HH, "data_dir": spec["data_dir"], "split": spec["split"]}
    out, seen = [], set()
    for row, prompt, chosen, _rejected in hh_rows(hh):
        if not prompt.strip() or not chosen.strip() or (prompt, chosen) in seen:
            continue
        seen.add((prompt, chosen))
        out.append({"id": f"hh-{row}", "prompt": prompt, "completion": chosen, "where": f"row {row}"})
        if spec["max_examples"] is not None and len(out) >= spec["max_examples"]:
            break
    return out


def check_no_eval_prompts(examples: Iterable[Mapping[str, str]], eval_prompts: Mapping[str, str], source: str) -> None:
    """Raise :class:`SftDataError` if an SFT example's prompt is a held-out eval prompt.

    ``eval_prompts``: eval prompt id -> raw text; texts compare after
    :func:`~prefsweep.data.prompts.normalize_text` (a copy that differs in case or spacing is still
    the eval question)."""
    by_text: dict[str, list[str]] = {}
    for pid, text in eval_prompts.items():
        by_text.setdefault(normalize_text(text), []).append(pid)
    hits = [(ex, by_text[key]) for ex in examples if (key := normalize_text(ex["prompt"])) in by_text]
    if hits:
        eval_ids = sorted({p for _, ids in hits for p in ids})
        shown = ", ".join(f"{ex['id']} ({ex['where']})" for ex, _ in hits[:8])
        raise SftDataError(
            f"{source}: {len(hits)} SFT prompts are held-out eval prompts (eval prompt ids "
            f"{', '.join(map(repr, eval_ids[:20]))}{', ...' if len(eval_ids) > 20 else ''}; SFT examples {shown}"
            f"{', ...' if len(hits) > 8 else ''}); the eval questions must never be trained on: remove them "
            "from the SFT data (or change data.seed / data.n_eval_prompts)"
        )


def render_examples(examples: Iterable[Mapping[str, str]], fmt: Mapping[str, Any]) -> list[dict[str, str]]:
    """``data/sft.jsonl`` rows of raw examples, rendered with ``prompt_format``."""
    return [{"prompt": render_prompt(ex["prompt"], fmt), "completion": render_completion(ex["completion"], fmt),
             "prompt_id": ex["id"]} for ex in examples]


def _jsonl_examples(spec: Mapping[str, Any], path: str | os.PathLike | None) -> tuple[list[dict[str, str]], str]:
    if path is None:
        raise SftDataError("--sft-data: required for sft.data.source 'jsonl' (the file sft.data.path)")
    examples = read_sft_jsonl(path)
    if spec["max_examples"] is not None:
        examples = examples[: spec["max_examples"]]
    return examples, str(path)


def _hh_examples(spec: Mapping[str, Any], path: str | os.PathLike | None) -> tuple[list[dict[str, str]], str]:
    return hh_examples(spec), f"sft.data ({spec['path'] or DEFAULT_HH}, split {spec['split']})"


@dataclass(frozen=True)
class SftSource:
    """One value of ``sft.data.source``: where SFT examples come from.

    ``examples(spec, path)``: the raw examples of ``sft.data`` (``path``: the user's file of a
    source that ``reads_file``) and how messages name them; None: the best responses of the
    ballots' training prompts (the SFT corpus job builds them). ``reads_file``: ``sft.data.path``
    is the user's file, a declared input of the SFT corpus job (editing it reruns SFT);
    ``local_copy``: ``sft.data.path`` may be a local dataset copy, fingerprinted."""

    name: str
    examples: Callable[[Mapping[str, Any], str | os.PathLike | None], tuple[list[dict[str, str]], str]] | None = None
    reads_file: bool = False
    local_copy: bool = False


#: The values of ``sft.data.source`` (the schema's enum lists the same names).
SFT_SOURCES: dict[str, SftSource] = {s.name: s for s in (
    SftSource("best_response"),
    SftSource("jsonl", _jsonl_examples, reads_file=True),
    SftSource("hh", _hh_examples, local_copy=True),
)}


def sft_source(config: Mapping[str, Any]) -> SftSource:
    """The :class:`SftSource` of ``sft.data.source``."""
    return SFT_SOURCES[config["sft"]["data"]["source"]]


def sft_user_file(config: Mapping[str, Any]) -> str | None:
    """The user's SFT file (``sft.data.path`` of a source that reads one), else None."""
    return config["sft"]["data"]["path"] if sft_source(config).reads_file else None


def sft_local_copy(config: Mapping[str, Any]) -> str | None:
    """``sft.data.path`` of a source that may read a local dataset copy, else None."""
    return config["sft"]["data"]["path"] if sft_source(config).local_copy else None


def check_sft_data(config: Mapping[str, Any]) -> None:
    """A source that reads the user's file has one: :class:`ConfigError` naming ``sft.data.path``."""
    spec = config["sft"]["data"]
    if not sft_source(config).reads_file:
        return
    if not spec["path"]:
        raise ConfigError(f"sft.data.path: required when sft.data.source is {spec['source']!r} (a file of "
                          "prompt/completion or messages objects, one a line)")
    if not os.path.isfile(spec["path"]):
        raise ConfigError(f"sft.data.path: {spec['path']}: no such file (the SFT data, one JSON object a line)")


def external_sft_corpus(config: Mapping[str, Any], eval_prompts: Mapping[str, str],
                        path: str | os.PathLike | None) -> list[dict[str, str]]:
    """The SFT rows of ``sft.data`` from a source with examples of its own (``jsonl``: the file
    ``path``, a declared input; ``hh``: the dataset), checked against the held-out eval prompts
    (``eval_prompts``: id -> raw text)."""
    spec = config["sft"]["data"]
    source = sft_source(config)
    if source.examples is None:
        raise SftDataError(f"sft.data.source: {spec['source']!r} is not an external source "
                           f"({', '.join(n for n, s in SFT_SOURCES.items() if s.examples is not None)})")
    examples, where = source.examples(spec, path)
    check_no_eval_prompts(examples, eval_prompts, where)
    return render_examples(examples, config["prompt_format"])
