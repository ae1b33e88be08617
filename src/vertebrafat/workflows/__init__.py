"""Workflows: the only code that both reads or writes files and computes (one study end to end,
its outputs, cohort on Dask, demo, evaluation of mask folders, reproduction of the reference study,
phantom cohorts)."""
