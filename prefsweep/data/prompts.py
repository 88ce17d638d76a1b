"""One prompt format for SFT, DPO and answer generation.

The format is the config section ``prompt_format`` (validated, defaults from the schema). Style
``hh`` is the Anthropic-HH
dialogue format that the DPO paper used for Pythia:

    prompt     = "\\n\\nHuman: {text}\\n\\nAssistant:"
    completion = " {text}"

Style ``template`` takes ``prompt_template`` (with ``{prompt}``) and ``completion_prefix``.
Style ``fastchat`` renders the prompt with a FastChat conversation template named by
``fastchat_template``. Every stage goes through :func:`render_prompt` / :func:`render_completion`,
so training and generation can never drift apart.

A multi-turn prompt is one raw text holding the earlier turns, written with the format's own
turn markers (:func:`turn_markers`) so that the rendered prompt is the whole dialogue; for
``hh``: ``"first question\n\nAssistant: first answer\n\nHuman: next question"``. A response
(candidate, completion) is one assistant turn and never holds a turn marker.

:func:`normalize_text` is the one comparison of texts: candidates of a prompt must differ under
it, and an SFT prompt equal to a held-out eval prompt under it is refused.
"""

from __future__ import annotations

import string
from typing import Any

HH_PROMPT = "\n\nHuman: {prompt}\n\nAssistant:"
#: The turn markers of style ``hh`` (a user turn, an assistant turn).
HH_MARKERS = ("\n\nHuman:", "\n\nAssistant:")


def normalize_text(text: str) -> str:
    """``text`` casefolded, stripped, with every run of white space made one space: two texts
    that are equal after this are the same text to a reader (and to a tokenizer, nearly)."""
    return " ".join(text.casefold().split())


def turn_markers(fmt: dict[str, Any]) -> tuple[str, ...]:
    """The strings that open a user or an assistant turn in prompt format ``fmt``.

    ``hh``: :data:`HH_MARKERS`. ``template``: the literal text of ``prompt_template`` before and
    after ``{prompt}``, trailing white space removed (``"Q: {prompt}\\nA:"`` gives ``"Q:"`` and
    ``"\\nA:"``; a template spelling HH's markers gives HH's). ``fastchat``: the role prefixes
    of the conversation template as it renders a second user turn and the answer after it,
    without the separator that ends the previous turn (vicuna: ``"USER:"``, ``"ASSISTANT:"``;
    llama-2: ``"[INST]"``, ``"[/INST]"``).
    """
    style = fmt["style"]
    if style == "hh":
        return HH_MARKERS
    if style == "template":
        if not fmt.get("prompt_template"):
            raise ValueError("prompt_format.prompt_template: required for style template (a string with {prompt})")
        return _unique(p.rstrip() for p in _template_literals(fmt["prompt_template"]) if p.strip())
    if style == "fastchat":
        return _fastchat_markers(fmt["fastchat_template"])
    raise ValueError(f"prompt_format.style: unknown style {style!r} (expected hh, template or fastchat)")


def _template_literals(template: str) -> list[str]:
    """The text of a ``str.format`` template between its fields (``{{`` read as ``{``)."""
    parts = [""]
    for literal, field, _spec, _conv in string.Formatter().parse(template):
        parts[-1] += literal
        if field is not None:
            parts.append("")
    return parts


def _unique(items) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))


def _fastchat_markers(name: str) -> tuple[str, ...]:
    """Role prefixes of FastChat template ``name``: rendered around sentinel turns (user,
    assistant, user, open assistant), the text between the first answer and the second question
    opens a user turn and the text after the second question opens the answer."""
    from fastchat.model.model_adapter import get_conversation_template

    conv = get_conversation_template(name)
    sentinels = ("\x00U1\x00", "\x00A1\x00", "\x00U2\x00")
    for role, text in zip((0, 1, 0), sentinels):
        conv.append_message(conv.roles[role], text)
    conv.append_message(conv.roles[1], None)
    rendered = conv.get_prompt()
    user = rendered.split(sentinels[1], 1)[1].split(sentinels[2], 1)[0]
    assistant = rendered.split(sentinels[2], 1)[1]
    seps = [s.strip() for s in (conv.sep2, conv.sep) if isinstance(s, str) and s.strip()]

    def prefix(text: str) -> str:
        text = text.strip()
        for sep in seps:  # the separator ends the previous turn; the role is what opens the next
            if text.startswith(sep) and text[len(sep):].strip():
                text = text[len(sep):].strip()
        return text

    return _unique(m for m in (prefix(user), prefix(assistant)) if m)


def render_prompt(text: str, fmt: dict[str, Any]) -> str:
    """Render a raw user question into the model's prompt string."""
    style = fmt["style"]
    if style == "hh":
        return HH_PROMPT.format(prompt=text)
    if style == "template":
        return fmt["prompt_template"].format(prompt=text)
    if style == "fastchat":
        from fastchat.model.model_adapter import get_conversation_template

        conv = get_conversation_template(fmt["fastchat_template"])
        conv.append_message(conv.roles[0], text)
        conv.append_message(conv.roles[1], None)
        return conv.get_prompt()
    raise ValueError(f"prompt_format.style: unknown style {style!r} (expected hh, template or fastchat)")


def render_completion(text: str, fmt: dict[str, Any]) -> str:
    """Render a response as the completion that follows :func:`render_prompt`."""
    style = fmt["style"]
    if style == "hh":
        return " " + text
    if style == "template":
        return fmt.get("completion_prefix", " ") + text
    if style == "fastchat":
        return fmt.get("completion_prefix", "") + text
    raise ValueError(f"prompt_format.style: unknown style {style!r} (expected hh, template or fastchat)")


def strip_completion(generated: str, fmt: dict[str, Any]) -> str:
    """Inverse of :func:`render_completion` for generated text; cut at the next turn marker."""
    style = fmt["style"]
    out = generated
    if style == "hh":
        out = out.split("\n\nHuman:")[0]
    return out.strip()
