"""Import a policy.pt of the DPO reference implementation as a self-contained HF directory.

    python scripts/import_policy.py --policy .cache/run/LATEST/policy.pt \
        --base EleutherAI/pythia-2.8b --out results/default/hf/baseline-dpo-ref \
        [--model-id baseline-dpo-ref] [--config-json "$(python -m prefsweep.config convert)"]

eric-mitchell/direct-preference-optimization saves ``{"step_idx", "state", "metrics"}``; the
state dict is loaded with ``torch.load(weights_only=True)`` into
``AutoModelForCausalLM.from_pretrained(--base)`` with a strict key check (missing or unexpected
keys are an error that lists them), then saved like ``scripts/convert.py`` does.
"""

from __future__ import annotations

import argparse

from prefsweep.train.convert import import_policy
from prefsweep.io import load_config_json


def make_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--policy", required=True, help="policy.pt written by the DPO reference trainer")
    p.add_argument("--base", required=True, help="HF model name or directory the policy was trained from")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--model-id", default=None, help="model id for provenance.json (default: name of --out)")
    p.add_argument("--config-json", default=None, help="config slice (inline JSON or a JSON file), hashed into provenance")
    return p


def main(argv: list[str] | None = None) -> None:
    args = make_parser().parse_args(argv)
    config = load_config_json(args.config_json) if args.config_json else None
    out = import_policy(args.policy, args.base, args.out, model_id=args.model_id, config=config)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
