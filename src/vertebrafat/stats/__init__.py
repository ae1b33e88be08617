"""Statistics: overlap metrics (Dice), surface distances, ROC/PR, ICC, Bland-Altman agreement,
test-retest repeatability and the evaluation of a prediction against a reference."""
