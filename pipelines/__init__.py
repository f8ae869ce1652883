"""docforge pipelines: the Ray jobs that turn inputs into WebDataset shards.

Flow: inputs -> a job (plan into tasks, process each input) -> `runner` (Ray tasks, commit markers,
error log) -> `shards` (deterministic tar writer + index.json) -> `report`/`verify`. The `docforge` CLI
lives in `cli`.
"""
