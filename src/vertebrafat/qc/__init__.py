"""Pictures for a human: the per-study QC overlay and the ROC, PR and Bland-Altman figures."""
