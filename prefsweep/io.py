"""Atomic file output, checked file input, hashing and provenance records.

Every output of the workflow is written to a temporary name in the target's directory and
renamed into place, so an interrupted job never leaves a half-written file that a later job
(or a rerun) would take for a finished one.

Every input is read through a reader that names the file when it is not what it should be
(:class:`DataFileError`): :func:`jsonl_lines` / :func:`read_jsonl` (line and column of bytes
that are not UTF-8, line of a record that is not JSON) and :func:`read_parquet` /
:func:`read_parquet_table` (a corrupt or truncated Parquet file, with how to rebuild it).
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
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

#: Libraries whose versions are recorded next to every model and table.
TRACKED_LIBRARIES = (
    "prefsweep", "torch", "transformers", "trl", "peft", "accelerate", "datasets", "tokenizers",
    "snakemake", "pref_voting", "fschat", "numpy", "pandas", "seaborn", "wandb",
)


def current_umask() -> int:
    """The process's umask, read without changing it where Linux says it (``/proc/self/status``);
    elsewhere set and restored at once."""
    with contextlib.suppress(OSError, ValueError):
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def umask_mode(directory: bool = False) -> int:
    """The mode ``open()`` / ``mkdir()`` give a new file (0o666) or directory (0o777) under the
    current umask: what a lab mate's group or world bits should be, not ``mkstemp``'s 0o600."""
    return (0o777 if directory else 0o666) & ~current_umask()


def _tmp_sibling(path: Path, suffix: str = "") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".tmp{suffix}", dir=path.parent)
    try:
        os.fchmod(fd, umask_mode())
    finally:
        os.close(fd)
    return Path(tmp)


def share_modes(root: str | os.PathLike) -> None:
    """Give every file and directory under ``root`` (itself included) the umask's mode: libraries
    that write through temporary files (transformers' ``model.safetensors``) leave 0o600."""
    file_mode, dir_mode = umask_mode(), umask_mode(directory=True)
    os.chmod(root, dir_mode)
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames:
            os.chmod(os.path.join(dirpath, name), dir_mode)
        for name in filenames:
            path = os.path.join(dirpath, name)
            if not os.path.islink(path):
                os.chmod(path, file_mode)


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
    """UTF-8 text; text that UTF-8 cannot encode (a lone surrogate such as ``"\\ud800"``, valid
    in JSON) is a :class:`DataFileError` naming the file and the character, nothing is written."""
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError as exc:
        line = text.count("\n", 0, exc.start) + 1
        raise DataFileError(
            f"{path}: cannot write line {line}: character {text[exc.start]!r} is not encodable as UTF-8 "
            f"({exc.reason}; a lone surrogate from a JSON \\u escape?); fix the input that holds it") from None
    atomic_write_bytes(path, data)


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
    share_modes(tmp)
    if path.exists():
        shutil.rmtree(path)
    os.replace(tmp, path)


class DataFileError(ValueError):
    """An input file is missing, unreadable or not in its format; the message names the file
    (and the line, where there is one) and says what was expected or how to rebuild it."""


@contextlib.contextmanager
def fail_clearly(*errors: type[BaseException]) -> Iterator[None]:
    """Turn the listed exception types into ``SystemExit(message)``: a script's user sees the
    message (which names file, record and what was expected), not a traceback."""
    try:
        yield
    except errors as exc:
        raise SystemExit(str(exc)) from None


@contextlib.contextmanager
def naming(path: str | os.PathLike, *errors: type[BaseException]) -> Iterator[None]:
    """Re-raise the listed exception types with ``"<path>: "`` before their message: for errors
    about records of a file raised by code that only saw the records."""
    try:
        yield
    except errors as exc:
        raise type(exc)(f"{path}: {exc}") from None


def jsonl_lines(path: str | os.PathLike) -> Iterator[tuple[int, str]]:
    """``(line number, text)`` of every non-blank line of a UTF-8 text file (a leading byte
    order mark is dropped).

    Lines are decoded one by one, so bytes that are not UTF-8 raise :class:`DataFileError`
    naming the file, the line and the column (a whole-file decode would only report a byte
    offset into an internal buffer).
    """
    with open(path, "rb") as fh:
        for lineno, raw in enumerate(fh, 1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise DataFileError(
                    f"{path}: line {lineno}: not valid UTF-8 (byte {raw[exc.start]:#04x} at column "
                    f"{exc.start + 1}); expected a UTF-8 text file (re-save it as UTF-8)"
                ) from None
            if lineno == 1 and line.startswith("\ufeff"):
                line = line[1:]
            if line.strip():
                yield lineno, line


def read_jsonl(path: str | os.PathLike) -> list[dict]:
    """Read a JSON-lines file; bad bytes or a bad line raise :class:`DataFileError` (a
    ``ValueError``) naming file and line number."""
    out = []
    for lineno, line in jsonl_lines(path):
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise DataFileError(f"{path}:{lineno}: not valid JSON ({exc.msg})") from None
    return out


def read_json(path: str | os.PathLike) -> Any:
    """A JSON file (a workflow output such as ``split.json``); a missing, truncated or invalid
    file raises :class:`DataFileError` naming it and how to rebuild it."""
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except FileNotFoundError:
        raise DataFileError(f"{path}: no such file; build it with `snakemake {path}`") from None
    try:
        return json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise DataFileError(f"{path}: not valid UTF-8 (byte offset {exc.start}); {rebuild_hint(path)}") from None
    except json.JSONDecodeError as exc:
        raise DataFileError(
            f"{path}: not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno}); {rebuild_hint(path)}"
        ) from None


def rebuild_hint(path: str | os.PathLike) -> str:
    """How to rebuild a damaged workflow output: "delete it and rerun ..." (for messages)."""
    return (
        f"delete it and rerun `snakemake {path}` (or `snakemake --forcerun <rule>` with the rule "
        "that writes it)"
    )


@contextlib.contextmanager
def _parquet_errors(path: str | os.PathLike) -> Iterator[None]:
    """pyarrow's errors on a damaged file (``Parquet magic bytes not found``, ``Corrupt snappy
    compressed data``, ...) as one :class:`DataFileError` naming the file."""
    try:
        yield
    except FileNotFoundError:
        raise DataFileError(
            f"{path}: no such file; expected the output of an earlier step (build it with "
            f"`snakemake {path}`)"
        ) from None
    except (pa.ArrowException, OSError) as exc:
        raise DataFileError(
            f"{path}: corrupt or truncated Parquet file ({exc}); {rebuild_hint(path)}"
        ) from None


def open_parquet(path: str | os.PathLike, columns: Sequence[str] | None = None) -> pq.ParquetFile:
    """The Parquet file at ``path``, its footer read and ``columns`` (if given) checked.

    Raises :class:`DataFileError` naming the file: missing, corrupt or truncated (with how to
    rebuild it), or without one of ``columns``.
    """
    with _parquet_errors(path):
        pf = pq.ParquetFile(path)
    names = pf.schema_arrow.names
    missing = [c for c in columns or () if c not in names]
    if missing:
        raise DataFileError(
            f"{path}: no column {', '.join(map(repr, missing))} (it has {', '.join(names)}); "
            f"expected a file written by this workflow: {rebuild_hint(path)}"
        )
    return pf


def read_parquet_table(
    path: str | os.PathLike, columns: Sequence[str] | None = None, max_rows: int | None = None
) -> pa.Table:
    """``columns`` (all when None) of a Parquet file as one Arrow table.

    ``max_rows`` reads only the leading row groups that hold that many rows (the result may
    have more rows; slice it). Errors as in :func:`open_parquet`, also for a file whose footer
    is intact but whose data pages are damaged.
    """
    pf = open_parquet(path, columns)
    cols = list(columns) if columns is not None else None
    with _parquet_errors(path):
        if max_rows is None:
            return pf.read(columns=cols)
        groups, rows = [], 0
        for g in range(pf.num_row_groups):
            if rows >= max_rows:
                break
            groups.append(g)
            rows += pf.metadata.row_group(g).num_rows
        if not groups:
            schema = pf.schema_arrow
            return (schema if cols is None else pa.schema([schema.field(c) for c in cols])).empty_table()
        return pf.read_row_groups(groups, columns=cols)


def read_parquet(path: str | os.PathLike, columns: Sequence[str] | None = None) -> pd.DataFrame:
    """``pandas.read_parquet(path, columns=columns)`` with the errors of :func:`open_parquet`:
    the one way this project reads a Parquet file into pandas."""
    open_parquet(path, columns)
    with _parquet_errors(path):
        return pd.read_parquet(path, columns=list(columns) if columns is not None else None)


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
