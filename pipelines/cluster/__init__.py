"""Running docforge on a Ray cluster: a local multi-node cluster (`local`), Ray Jobs submission (`submit`),
the distributed-training launcher (`launch`) and their `docforge cluster/submit/launch` commands (`cli`).

Jobs themselves do not change on a cluster: the runner connects to `--address`/`RAY_ADDRESS` and writes
to storage every node reaches; this package only starts, reaches and tears down the cluster.
"""
