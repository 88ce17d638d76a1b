"""The experiment a make target runs: its config files, and where its report goes.

    make report CONFIG=my/mine.yaml          # -> results/mine/report.html (mine's experiment)
    python scripts/make_config.py report-path --config "my/mine.yaml"
    python scripts/make_config.py configfiles --snakemake-args "--cores 4 --configfile my/mine.yaml"

The Makefile calls it with its ``CONFIG`` and ``SNAKEMAKE_ARGS`` (exported to the environment,
so no quoting is lost): ``check`` fails when the config files are given both ways,
``configfiles`` prints them (shell-quoted), ``report-path`` prints
``results/<experiment>/report.html`` of the config they make (``--config experiment=...`` in
``SNAKEMAKE_ARGS`` counts). A config error is one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys

from prefsweep.config import ConfigError
from prefsweep.config.files import make_configfiles, make_report_path


def make_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("what", choices=["check", "configfiles", "report-path"])
    p.add_argument("--config", default=os.environ.get("CONFIG", ""),
                   help="config files, space-separated (make's CONFIG; default: $CONFIG)")
    p.add_argument("--snakemake-args", default=os.environ.get("SNAKEMAKE_ARGS", ""),
                   help="make's SNAKEMAKE_ARGS (default: $SNAKEMAKE_ARGS)")
    return p


def main(argv: list[str] | None = None) -> None:
    args = make_parser().parse_args(argv)
    try:
        files = make_configfiles(args.config, args.snakemake_args)
        if args.what == "configfiles":
            print(shlex.join(files))
        elif args.what == "report-path":
            print(make_report_path(args.config, args.snakemake_args))
    except (ConfigError, OSError) as exc:
        print(f"make: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
