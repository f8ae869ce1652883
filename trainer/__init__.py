"""docforge trainer: the last stage of the flow (mixture stream ▶ tile ▶ tokenize ▶ pack ▶ train).

`tiling` (dynamic-resolution grids), `model` (tower + projector + LLM), `tokenizer`, `data` (chat
template, labels, packing, prefetch), `recipe` (the YAML schema), `distributed` (ranks, DDP/FSDP2),
`checkpoint`, `metrics`, `train` (the loop and the three-stage runner), `generate` (reload and ask),
`cli` (`docforge train`). Reads data only through `mixtures/`.
"""
