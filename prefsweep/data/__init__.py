"""Data stage: ballots (format and validation, the Arrow table, turn-marker screening), their
sources (a registry), supports and aggregation rules, the arms' pairs, series and SFT data."""
