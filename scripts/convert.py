"""Convert a trained model, adapter or Trainer checkpoint into a self-contained HF directory.

    python scripts/convert.py --config-json "$(python -m prefsweep.config convert)" \
        --source results/default/train/dpo/maj/shared/n64/seed1/final \
        --run-info results/default/train/dpo/maj/shared/n64/seed1/final/run_info.json \
        --out results/default/hf/dpo-maj-shared-n64-seed1 --model-id dpo-maj-shared-n64-seed1 \
        [--base results/default/train/sft/final]

A model used as it is from the hub: ``--hub-id EleutherAI/pythia-6.9b`` instead of ``--source``.

LoRA adapters are merged (``merge_and_unload``); the base comes from ``--base`` or the adapter's
``base_model_name_or_path``. Writes safetensors, tokenizer, generation_config (eos/pad) and
provenance.json atomically (see :mod:`prefsweep.train.convert`).
"""

from __future__ import annotations

import argparse

from prefsweep.train.convert import convert, hub_source
from prefsweep.hub import HubError
from prefsweep.io import fail_clearly, load_config_json


def make_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config-json", required=True, help="config slice of this job: inline JSON or a JSON file")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--source", help="full HF dir, PEFT adapter dir or checkpoint-{step} dir")
    src.add_argument("--hub-id", help="a hub model id used as it is (from the local cache when offline)")
    p.add_argument("--run-info", default=None, help="run_info.json of the training run the source came from")
    p.add_argument("--out", required=True, help="output directory hf/{model_id}")
    p.add_argument("--model-id", required=True, help="model id recorded in provenance.json")
    p.add_argument("--base", default=None, help="base model dir/name of an adapter (overrides adapter_config)")
    return p


def main(argv: list[str] | None = None) -> None:
    args = make_parser().parse_args(argv)
    config = load_config_json(args.config_json)
    source = hub_source(args.hub_id) if args.hub_id else args.source
    with fail_clearly(HubError):  # a hub id not to be had here: one line saying what to do
        out = convert(source, args.out, args.model_id, config=config, base=args.base, run_info=args.run_info)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
