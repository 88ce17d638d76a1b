"""Shell words for rule commands: every config value, path and id is quoted.

Snakemake substitutes ``{params.x}`` and ``{input}`` into ``shell:`` commands as they are; a
rule quotes a single value with ``:q``, and a param that is a whole option (``--flag VALUE`` or
nothing) is built here with :func:`option`, so a path with a space, a quote or ``$(...)`` reaches
the script as one argument and is never run by the shell.
"""

from __future__ import annotations

import shlex


def option(flag: str, *values: object) -> str:
    """``--flag 'v1' 'v2'`` with every value quoted; ``""`` when there is no value."""
    if not values:
        return ""
    return " ".join([flag, *(shlex.quote(str(v)) for v in values)])


def exports(env: dict[str, object]) -> str:
    """``export K='v' ...; `` for each value that is not ``None`` (``""`` when none is), braces
    doubled: Snakemake formats ``shell.prefix`` like a rule's command."""
    words = " ".join(f"{k}={shlex.quote(str(v))}" for k, v in env.items() if v is not None)
    return escape_braces(f"export {words}; ") if words else ""


def pythonpath_export(directory: str) -> str:
    """``export PYTHONPATH='directory'`` ahead of any PYTHONPATH already set, braces doubled."""
    return escape_braces(f"export PYTHONPATH={shlex.quote(directory)}${{PYTHONPATH:+:$PYTHONPATH}}; ")


def escape_braces(text: str) -> str:
    """``text`` with ``{`` and ``}`` doubled, to survive Snakemake's formatting of a command."""
    return text.replace("{", "{{").replace("}", "}}")
