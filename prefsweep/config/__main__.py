"""``python -m prefsweep.config STEP [--configfile ...]``: the config slice a step's job receives."""

from prefsweep.config import main

main()
