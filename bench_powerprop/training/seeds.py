"""The seeds of a cell's training batches (the trainer draws them; the weight statistics fingerprint them)."""


def batch_seed(seed: int, task_index: int, replicate: int = 0) -> int:
    """Seed of the training batches of a phase's task (the cell's seed for the first task of replicate 0).

    ``replicate`` (a method option, ``methods._controls.ReplicateOptions``) picks another batch order for the
    same seed: another training of the same start.
    """
    if replicate:
        seed = (int(seed) * 1_000_003 + 0x5EED_0000 + int(replicate)) % (2**63 - 1)
    return int(seed) if task_index == 0 else (int(seed) * 104_729 + task_index) % (2**63 - 1)


def cell_batch_seed(spec, task_index: int) -> int:
    """``batch_seed`` of a cell's spec (a ``CellSpec``)."""
    return batch_seed(spec.seed, task_index, getattr(spec.method_options, "replicate", 0))
