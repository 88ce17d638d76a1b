"""Reference forward tokens of the paper-scale sweep, with and without sharing.

    .venv/bin/python benchmarks/bench_ref_sharing.py [--n-prompts 100000]

Builds every series of config/pythia-2.8b-shp.yaml's design (sizes 1000..64000, maj shared,
sc prompt- and size-matched, 5 seeds, dpo.num_train_epochs) on the synthetic source at the same
scale (SHP itself cannot be downloaded here), tokenizes each pair once (a byte-level BPE trained
on the pairs, as the tiny preset does), and prints the reference-model forward tokens of:

* TRL's default (reference forward on every training step): sum over DPO jobs of epochs x tokens;
* TRL's per-job precompute: sum over DPO jobs of tokens;
* prefsweep (one `ref_logps` job per arm over its largest series): sum over arms of tokens.

A pair's forward tokens are len(prompt + chosen) + len(prompt + rejected), as DPO batches them.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import pandas as pd
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_data import REPO, bench_config, load_script  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n-prompts", type=int, default=100_000)
    args = p.parse_args(argv)

    paper = yaml.safe_load((REPO / "config" / "pythia-2.8b-shp.yaml").read_text())
    sizes = [s for s in paper["data"]["sizes"] if s > 0]
    seeds, epochs = paper["dpo"]["seeds"], paper["dpo"]["num_train_epochs"]
    scripts = {n: load_script(n) for n in ("ballots", "split", "pool", "series")}
    with tempfile.TemporaryDirectory(prefix="bench_ref.") as tmp:
        work = Path(tmp)
        cfg = work / "config.json"
        config = bench_config(args.n_prompts)
        config["data"]["n_eval_prompts"] = paper["data"]["n_eval_prompts"]
        cfg.write_text(json.dumps(config))
        c = ["--config-json", str(cfg)]
        d = work / "data"
        ballots, split = str(d / "ballots.jsonl"), str(d / "split.json")
        pools = {arm: str(d / "pool" / f"{arm}.parquet") for arm in ("maj", "sc")}
        scripts["ballots"].main([*c, "--out", ballots])
        scripts["split"].main([*c, "--ballots", ballots, "--out", split])
        for arm in pools:
            scripts["pool"].main([*c, "--ballots", ballots, "--split", split, "--arm", arm, "--out", pools[arm]])
        cells = [("maj", "shared")] + [("sc", m) for m in ("prompt", "size")]
        series: dict[tuple[str, str, int], pd.DataFrame] = {}
        for arm, matching in cells:
            for size in sizes:
                out = d / arm / matching / f"n{size}"
                scripts["series"].main([*c, "--ref-pool", pools["maj"], "--pool", pools[arm], "--arm", arm,
                                        "--matching", matching, "--size", str(size),
                                        "--pairs-out", str(out / "pairs.parquet"), "--manifest-out", str(out / "manifest.json")])
                series[arm, matching, size] = pd.read_parquet(out / "pairs.parquet",
                                                              columns=["pair_id", "prompt", "chosen", "rejected"])

    from prefsweep.tiny import train_tokenizer

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
    on_the_fly = per_job * epochs
    shared = 0
    for arm in ("maj", "sc"):
        largest = [series[a, m, max(sizes)] for a, m in cells if a == arm]
        shared += tokens(pd.concat(largest).drop_duplicates("pair_id"))
    n_jobs = len(series) * len(seeds)
    print(f"[bench] paper design: {n_jobs} DPO jobs ({len(series)} distinct datasets x {len(seeds)} seeds), "
          f"{epochs} epoch(s)")
    print(f"[bench] reference forward tokens, TRL on the fly:      {on_the_fly:,}")
    print(f"[bench] reference forward tokens, TRL precompute/job:  {per_job:,}")
    print(f"[bench] reference forward tokens, shared per arm:      {shared:,} "
          f"({per_job / shared:.1f}x fewer than per-job precompute)")


if __name__ == "__main__":
    main()
