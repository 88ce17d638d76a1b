"""What an experiment costs: cluster resources per job and the plan (GPU-hours, API calls)."""
