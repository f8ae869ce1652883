"""docforge mixtures: manifests that blend shard sets with weights and task prompts, one per training stage.

Reads shards written by `pipelines/`; the trainer reads data only through a mixture.
"""
