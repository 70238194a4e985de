"""Data: MNIST read from any common form and validated (`mnist`, `formats`), how an epoch is cut into batches
and shards (`batches`, `sharding`), augmentation as tensor ops (`augment`) and the corrupted test sets
(`corruptions`). Imports only the engine's top level."""
