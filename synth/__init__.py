"""docforge synth: pure, seeded generators and renderers (text pages, tables, formulas, positional tasks).

No Ray and no shard code here: a rendered sample is a function of (config, seed). `pipelines/` calls in.
"""
