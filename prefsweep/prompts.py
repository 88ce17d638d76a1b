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
"""

from __future__ import annotations

from typing import Any

HH_PROMPT = "\n\nHuman: {prompt}\n\nAssistant:"


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
