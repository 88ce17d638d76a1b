"""``python -m prefsweep.eval.judges.llm [--configfile F ...]``: print the value of
``PREFSWEEP_JUDGE_CLIENT`` for ``config/config.yaml`` (with F merged over it), for running
scripts/judge.py by hand."""

from __future__ import annotations

import argparse

from prefsweep.config import load_config
from prefsweep.eval.judges.llm.settings import CLIENT_ENV, client_env_value


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m prefsweep.eval.judges.llm",
                                description=f"Print the value of {CLIENT_ENV} for a config.")
    p.add_argument("--configfile", nargs="*", default=[], help="config files merged over config/config.yaml")
    args = p.parse_args(argv)
    print(client_env_value(load_config(*args.configfile)["eval"]["judge"]))


if __name__ == "__main__":
    main()
