"""The paper's figures, drawn from the eval tables of one experiment.

:mod:`prefsweep.plots.registry` lists the figures (importing no plotting library); each figure is
one module named after it; the other modules are what the figures share. docs/design/plots.md
maps them and says how to add a figure.
"""
