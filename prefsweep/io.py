"""Atomic file output, hashing and provenance records.

Every output of the workflow is written to a temporary name in the target's directory and
renamed into place, so an interrupted job never leaves a half-written file that a later job
(or a rerun) would take for a finished one.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import json
import os
import platform
import shutil
import sys
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd

#: Libraries whose versions are recorded next to every model and table.
TRACKED_LIBRARIES = (
    "prefsweep", "torch", "transformers", "trl", "peft", "accelerate", "datasets", "tokenizers",
    "snakemake", "pref_voting", "fschat", "numpy", "pandas", "seaborn", "wandb",
)


def _tmp_sibling(path: Path, suffix: str = "") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".tmp{suffix}", dir=path.parent)
    os.close(fd)
    return Path(tmp)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary sibling and ``os.replace``."""
    path = Path(path)
    tmp = _tmp_sibling(path)
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    """JSON with sorted keys and a trailing newline, so equal objects give equal bytes."""
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n")


def atomic_write_jsonl(path: str | os.PathLike, records: Iterable[dict]) -> None:
    """One JSON object per line (keys in insertion order, as FastChat writes them)."""
    lines = [json.dumps(r, ensure_ascii=False) + "\n" for r in records]
    atomic_write_text(path, "".join(lines))


def atomic_write_parquet(path: str | os.PathLike, df: pd.DataFrame) -> None:
    """Parquet without the pandas index; byte-identical for identical frames."""
    path = Path(path)
    tmp = _tmp_sibling(path, ".parquet")
    try:
        df.to_parquet(tmp, index=False)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a fresh temporary directory; on success it replaces ``path`` in one rename.

    On an exception the temporary directory is removed and ``path`` is left untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if path.exists():
        shutil.rmtree(path)
    os.replace(tmp, path)


def read_jsonl(path: str | os.PathLike) -> list[dict]:
    """Read a JSON-lines file; a bad line raises ``ValueError`` naming file and line number."""
    out = []
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{lineno}: not valid JSON ({exc.msg})") from None
    return out


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def sha256_json(obj: Any) -> str:
    """Hash of an object's canonical JSON form (sorted keys): a config fingerprint."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()


def library_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in TRACKED_LIBRARIES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def save_run_info(directory: str | os.PathLike, config: dict, **extra: Any) -> Path:
    """Write ``run_info.json`` (resolved config, library versions, extras) into ``directory``."""
    path = Path(directory) / "run_info.json"
    atomic_write_json(path, {"config": config, "versions": library_versions(), **extra})
    return path


def load_config_json(value: str | os.PathLike) -> dict:
    """The config slice the workflow hands to a script: inline JSON (what the rules pass,
    ``--config-json '{...}'``) or the path of a JSON file (handy when running a script by hand)."""
    text = str(value)
    if text.lstrip().startswith("{"):
        try:
            config = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"--config-json: not valid JSON ({exc.msg})") from None
    else:
        with open(text, encoding="utf-8") as fh:
            config = json.load(fh)
    # The job's log (logs/<experiment>/...) starts with the values it used.
    print(f"prefsweep config: {json.dumps(config, sort_keys=True)}", file=sys.stderr, flush=True)
    return config
