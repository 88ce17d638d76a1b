"""What a hostile (or merely unlucky) user puts where a shell may see it: a checkout and a working
directory whose names hold a space, a quote and ``$( )``, and config strings holding command
substitutions, backticks, quotes, parentheses and semicolons. A value that reaches a shell
unquoted runs ``touch pwned<N>`` (:func:`pwned_files` finds it) or breaks the command line.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from tests.conftest import REPO

#: A checkout's folder name: a space, a quote and parentheses, as users name folders.
CLONE_NAME = "my clone's (v2)"
#: A working directory's name: also a command substitution.
WORKDIR_NAME = "work dir's $(touch pwned0)"

#: Config strings that reach job environments (wandb) as they are.
WANDB = {
    "project": "rlhf (v2) $(touch pwned1) `touch pwned2` 'single' \"double\"",
    "entity": "lab; touch pwned3",
}


def copy_checkout(dest: Path) -> Path:
    """The tracked and untracked-but-not-ignored files of this checkout under ``dest`` (what a
    clone holds), without .venv, results or caches."""
    files = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
                           cwd=REPO, capture_output=True, check=True).stdout.decode().split("\0")
    for rel in filter(None, files):
        src = REPO / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    return dest


def pwned_files(*roots: Path) -> list[str]:
    """Files named ``pwned*`` under ``roots``: proof that a value was run by a shell."""
    return sorted(str(p) for root in roots for p in Path(root).rglob("pwned*"))


def modes(root: Path) -> dict[str, set[int]]:
    """Permission bits of every file and directory under ``root``: {"files": {...}, "dirs": {...}}."""
    out: dict[str, set[int]] = {"files": set(), "dirs": set()}
    for dirpath, dirnames, filenames in os.walk(root):
        out["dirs"].update(os.stat(Path(dirpath) / d).st_mode & 0o777 for d in dirnames)
        out["files"].update(os.lstat(Path(dirpath) / f).st_mode & 0o777 for f in filenames)
    return out
