"""Writing a built figure (every format of ``plots.formats`` and its CSV) and the job's ``done.json``."""

from __future__ import annotations

import io
import os
from pathlib import Path

import matplotlib.pyplot as plt

from prefsweep.io import atomic_write_bytes, atomic_write_json, atomic_write_text, sha256_file
from prefsweep.plots.options import PlotOptions, paper_style
from prefsweep.plots.result import PlotResult


def save_result(result: PlotResult, out_dir: str | os.PathLike, opts: PlotOptions) -> list[Path]:
    """Write ``<name>.<fmt>`` for every format and ``<name>.csv`` atomically; close the figure."""
    out_dir = Path(out_dir)
    written = []
    with paper_style(opts):
        for fmt in opts.formats:
            buf = io.BytesIO()
            # No timestamps in the files: equal figures give equal bytes.
            metadata = {"CreationDate": None} if fmt == "pdf" else ({"Date": None} if fmt == "svg" else None)
            result.figure.savefig(buf, format=fmt, dpi=opts.dpi, metadata=metadata)
            path = out_dir / f"{result.name}.{fmt}"
            atomic_write_bytes(path, buf.getvalue())
            written.append(path)
    csv_path = out_dir / f"{result.name}.csv"
    atomic_write_text(csv_path, result.data.to_csv(index=False, float_format="%.6g"))
    written.append(csv_path)
    plt.close(result.figure)
    return written


def write_done(out_dir: str | os.PathLike, results: list[PlotResult], files: dict[str, list[Path]],
               inputs: dict[str, str | None]) -> Path:
    """``done.json``: what was written, which figures are placeholders (and why), input hashes."""
    path = Path(out_dir) / "done.json"
    atomic_write_json(path, {
        "figures": {n: [str(p) for p in ps] for n, ps in files.items()},
        "placeholders": {r.name: r.placeholder for r in results if r.placeholder},
        "notes": {r.name: r.notes for r in results if r.notes},
        "missing": {r.name: r.missing for r in results if r.missing},
        "inputs": {k: (sha256_file(v) if v and Path(v).is_file() else None) for k, v in inputs.items()},
    })
    return path
