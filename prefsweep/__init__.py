"""prefsweep: preference-learning sweeps as a Snakemake workflow.

The package holds the logic (pure, typed functions); ``scripts/`` holds one thin command-line
program per heavy step; ``workflow/rules/*.smk`` wire them into a DAG.
"""

__version__ = "0.1.0"
