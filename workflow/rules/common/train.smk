# Helpers of workflow/rules/train.smk.


def train_spec_json(wildcards):
    """The cell's training spec (cell-sized; an experiment never goes on a command line)."""
    return json.dumps(PLAN.spec(cell_of(wildcards)), sort_keys=True)


def integrity_of(wildcards):
    """'' for an intact cell; what is wrong with a damaged one (a dry run then lists it as changed)."""
    return DAMAGED.get(cell_of(wildcards), "")


def checkpoint_dir(wildcards):
    return PLAN.checkpoint_dir(cell_of(wildcards))


def train_dataset_inputs(wildcards):
    """The .beton files a cell reads ([] for digits/MNIST, which are read in memory)."""
    return list(PLAN.beton_paths(wildcards.experiment).values())


def lineage_inputs(wildcards):
    """The parents' model.pt or snapshots/ this cell starts from (init_from / mask_from)."""
    return PLAN.lineage_inputs(cell_of(wildcards))


train_gpus = experiment_resource("gpu", 0)
train_runtime = experiment_resource("runtime", 60)
train_mem_mb = experiment_resource("mem_mb", 4000)
train_threads = experiment_resource("threads", 1)


def train_launcher(wildcards):
    """``python``, or torchrun with one process per GPU when the experiment asks for more than one."""
    gpus = train_gpus(wildcards)
    if gpus > 1:
        return f"python -m torch.distributed.run --standalone --nproc_per_node={gpus}"
    return "python"
