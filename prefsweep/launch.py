"""Start a training or reference log-prob script with the job's GPU count: one process, or
``accelerate launch`` with one process per GPU.

    python -m prefsweep.launch --processes {resources.gpu} [--accelerate ddp|fsdp|FILE] \\
        scripts/dpo.py --config-json ... --out ...

``--processes`` <= 1 (the local default; ``gpu: 0`` or ``1``): the script runs in this very
interpreter (``runpy``), exactly as ``python scripts/dpo.py ...`` would, with no launcher in
between. ``--processes N`` > 1: ``accelerate launch --config_file <config> --num_processes N
scripts/dpo.py ...`` replaces this process. ``<config>`` is an accelerate config file:
``ddp`` (:data:`ACCELERATE_CONFIGS`, the default: data-parallel, each GPU holds the whole model)
or ``fsdp`` (weights, gradients and optimizer state sharded over the GPUs: full fine-tuning of a
model too large for one GPU), both shipped in ``config/accelerate/``, or a path to one of your
own. On a machine without CUDA the N processes run on CPU over gloo (``ACCELERATE_USE_CPU``,
set by each process: :func:`prefsweep.distributed.setup_processes`), which is how the tests
check multi-process jobs (``tests/unit/test_multiprocess.py``).

The rules put the count in the shell command, not in ``params``, so changing the number of GPUs
never reruns a finished job by itself (but a run's checkpoints record it: a job resumed with
another count starts over, since its batches would differ).
"""

from __future__ import annotations

import argparse
import os
import runpy
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ACCELERATE_DIR = REPO / "config" / "accelerate"
#: Named accelerate configs shipped with the workflow (``--accelerate NAME``).
ACCELERATE_CONFIGS = ("ddp", "fsdp")
DEFAULT_ACCELERATE = "ddp"


def accelerate_config(name_or_path: str) -> Path:
    """The accelerate config file: a name of :data:`ACCELERATE_CONFIGS`, or a path (must exist)."""
    if name_or_path in ACCELERATE_CONFIGS:
        return ACCELERATE_DIR / f"{name_or_path}.yaml"
    path = Path(name_or_path)
    if not path.is_file():
        raise SystemExit(f"--accelerate {name_or_path!r}: expected one of {list(ACCELERATE_CONFIGS)} "
                         f"({ACCELERATE_DIR}) or an accelerate config file that exists")
    return path


def launch_command(processes: int, script: str, script_args: list[str],
                   accelerate: str = DEFAULT_ACCELERATE) -> tuple[list[str] | None, dict[str, str]]:
    """``(argv, env)`` that run ``script`` with ``processes`` processes.

    ``argv`` is ``None`` for one process (run the script in this interpreter), else the
    ``accelerate launch`` command line; ``env``: variables to add (none so far: whether the
    processes use the CPU is decided in them, :func:`prefsweep.distributed.setup_processes`,
    so this launcher never imports torch).
    """
    if processes <= 1:
        return None, {}
    argv = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(accelerate_config(accelerate)),
            "--num_processes", str(processes), "--num_machines", "1", "--main_process_port", str(free_port()),
            script, *script_args]
    return argv, {}


def free_port() -> int:
    """A TCP port free on this host now: the rendezvous port of the job's processes. accelerate's
    fixed default (29500) would clash between two multi-GPU jobs that share a node."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def make_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--processes", type=int, required=True,
                   help="processes (= GPUs) of the job: the rule's resources.gpu; <= 1 runs the script directly")
    p.add_argument("--accelerate", default=DEFAULT_ACCELERATE,
                   help=f"accelerate config with several processes: {' | '.join(ACCELERATE_CONFIGS)} | FILE "
                        f"[{DEFAULT_ACCELERATE}]")
    p.add_argument("script", help="the script to run (scripts/sft.py, scripts/ref_logps.py, scripts/dpo.py)")
    p.add_argument("args", nargs=argparse.REMAINDER, help="the script's own arguments")
    return p


def main(argv: list[str] | None = None) -> None:
    args = make_parser().parse_args(argv)
    command, env = launch_command(args.processes, args.script, args.args, args.accelerate)
    if command is None:
        # As `python script args`: the script is __main__ and its directory is sys.path[0].
        sys.argv = [args.script, *args.args]
        sys.path[0] = str(Path(args.script).resolve().parent)
        runpy.run_path(args.script, run_name="__main__")
        return
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(command[0], command, {**os.environ, **env})


if __name__ == "__main__":
    main()
