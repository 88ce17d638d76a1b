"""Reference log-probs: forward tokens of the paper-scale design and wall time on the default
design, shared per arm (prefsweep) vs TRL's per-job precompute.

    python benchmarks/bench_ref_sharing.py [--scale full|small] [--repeats 3] [--json OUT] [--data-dir DIR]

**Tokens, paper design.** Every series of config/paper/{base,shp}.yaml's design (sizes
1000..64000, maj shared, sc prompt- and size-matched, 5 seeds, ``dpo.num_train_epochs``) is
built on the synthetic source at the same scale (100k prompts: SHP cannot be downloaded here;
``--data-dir`` reuses the data bench_data.py built with ``--keep``), each pair tokenized once
(a byte-level BPE trained on the pairs, as the tiny preset does). A pair's forward tokens are
len(prompt + chosen) + len(prompt + rejected), as DPO batches them. Counted: TRL's per-job
precompute (sum over DPO jobs of their pairs' tokens), TRL's default without precompute (that
times the epochs), prefsweep's one ``ref_logps`` job per arm over its largest series.

**Wall time, default design.** The default experiment's series (config/config.yaml) and its
tiny model (random weights: the time does not depend on them): prefsweep's two ``ref_logps``
computations (``prefsweep.train.reflogps.compute_ref_logps`` over each arm's union, tokenization
included) vs, for each of the default design's DPO jobs, TRL 1.16's own precompute in
``DPOTrainer`` (its ``_prepare_dataset`` tokenization + ``_precompute_ref_logps``, timed inside
the trainer's construction; same batch size 32). The values are checked equal (1e-5) on the
first job. Repeated, in turn; the ratio is taken repeat by repeat.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_data import REPO, run_in_process
from harness import Figure, emit, fmt_s, median, parser, ratios, spread

FIGURES = ("ref_logps.tokens_paper", "ref_logps.wall_default")
SCALES = {"full": 100_000, "small": 2_000}
CELLS = (("maj", "shared"), ("sc", "prompt"), ("sc", "size"))
BATCH = 32


def series_tables(data: Path) -> dict[tuple[str, str, int], pd.DataFrame]:
    out = {}
    for arm, matching in CELLS:
        for d in sorted((data / arm / matching).glob("n*")):
            out[arm, matching, int(d.name[1:])] = pd.read_parquet(
                d / "pairs.parquet", columns=["pair_id", "prompt", "chosen", "rejected"])
    return out


def paper_tokens(data_dir: Path, n_prompts: int) -> Figure:
    from bench_data import bench_config, sizes_for

    from prefsweep.config import load_config
    from prefsweep.train.tiny import train_tokenizer

    paper = load_config(REPO / "config" / "paper" / "base.yaml", REPO / "config" / "paper" / "shp.yaml", check=False)
    seeds, epochs = paper["dpo"]["seeds"], paper["dpo"]["num_train_epochs"]
    if not (data_dir / "data" / "split.json").exists():
        run_in_process(data_dir, n_prompts, bench_config(n_prompts, sizes_for(n_prompts)))
    series = series_tables(data_dir / "data")
    sizes = sorted({s for _, _, s in series})
    every = pd.concat(series.values()).drop_duplicates("pair_id")
    sample = pd.concat([every["prompt"] + every["chosen"], every["prompt"] + every["rejected"]]).sample(
        n=min(20_000, 2 * len(every)), random_state=0)
    tok = train_tokenizer(sample.tolist(), vocab_size=512)
    lengths = {}
    for col in ("chosen", "rejected"):
        enc = tok((every["prompt"] + every[col]).tolist(), add_special_tokens=False)["input_ids"]
        lengths[col] = pd.Series([len(x) for x in enc], index=every["pair_id"])
    per_pair = lengths["chosen"] + lengths["rejected"]

    def tokens(frame: pd.DataFrame) -> int:
        return int(per_pair.loc[frame["pair_id"]].sum())

    per_job = sum(tokens(df) for df in series.values()) * len(seeds)
    shared = sum(tokens(pd.concat([series[a, m, max(sizes)] for a, m in CELLS if a == arm]).drop_duplicates("pair_id"))
                 for arm in ("maj", "sc"))
    n_jobs = len(series) * len(seeds)
    return Figure(
        name="ref_logps.tokens_paper",
        label=(f"reference forward tokens, paper design on {n_prompts:,} synthetic prompts: {n_jobs} DPO jobs "
               f"({len(series)} datasets x {len(seeds)} seeds, {epochs} epoch(s)); TRL without precompute "
               f"{per_job * epochs:,}"),
        value=f"shared per arm {shared:,}",
        comparison=f"TRL precompute per job {per_job:,}",
        ratio=f"{per_job / shared:.1f}x fewer",
        spread="exact count (no spread)")


def default_design(work: Path):
    """The default experiment's series (in-process data jobs), its DPO jobs' datasets, the arms'
    unions, and a saved random tiny model."""
    from prefsweep import paths as P
    from prefsweep.config import load_config
    from prefsweep.train.reflogps import union_pairs
    from prefsweep.train.tiny import build_tiny_model, train_tokenizer

    config = load_config()
    run_in_process(work, None, config)
    series = series_tables(work / "data")
    jobs = [series[cell[0], cell[1], int(cell[2])] for cell in P.dpo_cells(config)]  # (arm, matching, size, seed[, init])
    sizes = max(s for _, _, s in series)
    unions = [union_pairs([series[a, m, sizes] for a, m in CELLS if a == arm]) for arm in ("maj", "sc")]
    texts = pd.concat([pd.concat(jobs)[c] for c in ("prompt", "chosen", "rejected")]).tolist()
    tok = train_tokenizer(texts, vocab_size=config["model"]["tiny"]["vocab_size"])
    model = build_tiny_model(tok, config["model"]["tiny"], seed=0)
    model.save_pretrained(work / "model")
    tok.save_pretrained(work / "model")
    return config, jobs, unions, work / "model"


def wall_default(work: Path, repeats: int) -> Figure:
    import numpy as np
    from datasets import Dataset
    from trl import DPOTrainer

    from prefsweep.train.reflogps import compute_ref_logps
    from prefsweep.train.training import TRAIN_DTYPE, build_dpo_config, load_model_and_tokenizer

    config, jobs, unions, model_dir = default_design(work)
    max_length = config["dpo"]["max_length"]
    spent = {"t": 0.0}

    def timing(method):
        def wrapper(self, *a, **k):
            t0 = time.perf_counter()
            try:
                return method(self, *a, **k)
            finally:
                spent["t"] += time.perf_counter() - t0
        return wrapper

    def ours():
        model, tok = load_model_and_tokenizer(str(model_dir), dtype=TRAIN_DTYPE)
        return [compute_ref_logps(model, tok, u, max_length=max_length, key="dpo.max_length", batch_size=BATCH)
                for u in unions]

    def trl():
        spent["t"] = 0.0
        out = []
        for i, job in enumerate(jobs):
            model, tok = load_model_and_tokenizer(str(model_dir), dtype=TRAIN_DTYPE)
            args = build_dpo_config(config["dpo"], output_dir=str(work / f"trl{i}"), seed=1, run_name="bench",
                                    report_to="none")
            args.precompute_ref_batch_size = BATCH
            trainer = DPOTrainer(model=model, args=args, processing_class=tok,
                                 train_dataset=Dataset.from_pandas(job[["prompt", "chosen", "rejected"]]))
            out.append(trainer.train_dataset)
        return out

    originals = (DPOTrainer._prepare_dataset, DPOTrainer._precompute_ref_logps)
    DPOTrainer._prepare_dataset = timing(originals[0])
    DPOTrainer._precompute_ref_logps = timing(originals[1])
    try:
        ours(), trl()  # warm-up
        t_ours, t_trl = [], []
        for _ in range(repeats):
            t0 = time.perf_counter()
            mine = ours()
            t_ours.append(time.perf_counter() - t0)
            theirs = trl()
            t_trl.append(spent["t"])
            print(f"[bench]   shared {t_ours[-1]:.2f} s, TRL per job {t_trl[-1]:.2f} s", flush=True)
    finally:
        DPOTrainer._prepare_dataset, DPOTrainer._precompute_ref_logps = originals
    table = pd.concat(mine).drop_duplicates("pair_id").set_index("pair_id")
    first = jobs[0].assign(trl=theirs[0]["ref_chosen_logps"])
    np.testing.assert_allclose(table.loc[first["pair_id"], "ref_chosen_logps"], first["trl"], rtol=0, atol=1e-5)
    r = ratios(t_trl, t_ours)
    n_pairs = sum(len(u) for u in unions)
    return Figure(
        name="ref_logps.wall_default",
        label=(f"reference log-probs, default design: 2 arm jobs over {n_pairs} distinct pairs vs {len(jobs)} DPO "
               f"jobs' own precompute over {sum(len(j) for j in jobs)} pairs (values equal within 1e-5)"),
        value=f"shared per arm {fmt_s(median(t_ours))}",
        comparison=f"TRL precompute per job {fmt_s(median(t_trl))}",
        ratio=f"{median(r):.1f}x faster",
        spread=spread(r, lambda x: f"{x:.1f}x", "ratio"))


def main(argv: list[str] | None = None) -> None:
    p = parser(__doc__)
    p.add_argument("--data-dir", default=None, help="reuse (or build and keep) the paper-scale data here")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (the workflow's jobs: 1 on 2 cores)")
    args = p.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    repeats = args.repeats or (3 if args.scale == "full" else 1)
    with tempfile.TemporaryDirectory(prefix="bench_ref.") as tmp:
        data_dir = Path(args.data_dir) if args.data_dir else Path(tmp) / "paper"
        figures = [paper_tokens(data_dir, SCALES[args.scale]), wall_default(Path(tmp) / "default", repeats)]
    emit(figures, FIGURES, args.json)


if __name__ == "__main__":
    main()
