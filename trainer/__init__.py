"""docforge trainer: dynamic-resolution tiling, the ViT + MLP + LLM model and the streaming training loop.

Reads data only through `mixtures/`.
"""
