"""Convert a trained model, adapter or Trainer checkpoint into a self-contained HF directory.

    python scripts/convert.py --config-json results/default/config/convert.json \
        --source results/default/dpo/maj/shared/n64/seed1/final \
        --out results/default/hf/dpo-maj-shared-n64-seed1 --model-id dpo-maj-shared-n64-seed1 \
        [--base results/default/models/sft]

LoRA adapters are merged (``merge_and_unload``); the base comes from ``--base`` or the adapter's
``base_model_name_or_path``. Writes safetensors, tokenizer, generation_config (eos/pad) and
provenance.json atomically (see :mod:`prefsweep.convert`).
"""

from __future__ import annotations

import argparse

from prefsweep.convert import convert
from prefsweep.io import load_config_json


def make_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config-json", required=True, help="config slice of this job: inline JSON or a JSON file")
    p.add_argument("--source", required=True, help="full HF dir, PEFT adapter dir or checkpoint-{step} dir")
    p.add_argument("--out", required=True, help="output directory hf/{model_id}")
    p.add_argument("--model-id", required=True, help="model id recorded in provenance.json")
    p.add_argument("--base", default=None, help="base model dir/name of an adapter (overrides adapter_config)")
    return p


def main(argv: list[str] | None = None) -> None:
    args = make_parser().parse_args(argv)
    config = load_config_json(args.config_json)
    out = convert(args.source, args.out, args.model_id, config=config, base=args.base)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
