"""Training one cell: the trainer's loop and the parts it is built from, one concern per module.

* ``trainer``: the loop (phases, steps, evaluation, divergence) and ``train_cell``;
* ``context``: the ``TrainingContext`` every method hook receives;
* ``strategy``: where the model runs — ``LocalStrategy`` or ``DDPStrategy`` under torchrun;
* ``precision``: autocast and fp16 loss scaling;
* ``checkpointing``: checksummed, resumable checkpoints outside Snakemake's outputs;
* ``lineage``: snapshots a run writes and the weights/masks a cell inherits from another;
* ``progress``: the training log and progress bar.
"""
