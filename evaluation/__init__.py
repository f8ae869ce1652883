"""docforge evaluation: the metrics the INF-MLLM2 report scores parsing with, and `docforge eval`.

Edit distances (Nougat's per-sample normalised character distance, im2markup's token distance for
formulas) and TEDS / structure-only TEDS for tables. Reads predictions and references; writes nothing
but the scores.
"""
