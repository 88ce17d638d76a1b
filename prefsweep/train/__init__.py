"""Training stage: SFT and DPO jobs on TRL, reference log-probs, checkpoints, model export."""
