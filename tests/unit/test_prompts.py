"""Prompt formats: the one text normalisation and the turn markers a response may not hold."""

from __future__ import annotations

import pytest

from prefsweep.data.prompts import HH_MARKERS, normalize_text, render_prompt, turn_markers


def test_normalize_text_ignores_case_and_runs_of_white_space_only():
    assert normalize_text("  Boil\n\n IT.\t") == normalize_text("boil it.") == "boil it."
    assert normalize_text("STRASSE") == normalize_text("straße")  # casefold, not lower
    assert normalize_text("Boil it.") != normalize_text("Boil it!")  # punctuation is text
    assert normalize_text("") == normalize_text(" \n ") == ""


@pytest.mark.parametrize("fmt, markers", [
    ({"style": "hh"}, ("\n\nHuman:", "\n\nAssistant:")),
    # a template that spells HH's dialogue has HH's markers
    ({"style": "template", "prompt_template": "\n\nHuman: {prompt}\n\nAssistant:"}, HH_MARKERS),
    ({"style": "template", "prompt_template": "### Question: {prompt}\n### Answer:"}, ("### Question:", "\n### Answer:")),
    ({"style": "template", "prompt_template": "<<{{sys}}>> {prompt} [A]"}, ("<<{sys}>>", " [A]")),  # {{ is a brace
    ({"style": "template", "prompt_template": "{prompt}"}, ()),
    ({"style": "fastchat", "fastchat_template": "vicuna_v1.1"}, ("USER:", "ASSISTANT:")),
    ({"style": "fastchat", "fastchat_template": "llama-2"}, ("[INST]", "[/INST]")),
    ({"style": "fastchat", "fastchat_template": "zephyr"}, ("<|user|>", "<|assistant|>")),
])
def test_turn_markers_of_each_style(fmt, markers):
    assert turn_markers(fmt) == markers
    # every marker is in the rendered prompt: it is what opens a turn there
    rendered = render_prompt("Q?", fmt)
    assert all(m.strip() in rendered for m in markers)


def test_unknown_style_is_named():
    with pytest.raises(ValueError, match="prompt_format.style: unknown style 'chat'"):
        turn_markers({"style": "chat"})
