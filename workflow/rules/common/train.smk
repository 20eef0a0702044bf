# Helpers of workflow/rules/train.smk.


def train_spec_json(wildcards):
    """The cell's training spec (cell-sized; an experiment never goes on a command line); Snakemake records
    only its spec hash (paths and logging switches change no result, so they retrain nothing).
    """
    cell = cell_of(wildcards)
    return RecordedAs(json.dumps(PLAN.spec(cell), sort_keys=True), PLAN.spec_hash(cell))


def checkpoint_location(wildcards):
    """The cell's checkpoint folder; a location, recorded as nothing (an absolute checkpoint_dir retrains nothing)."""
    return RecordedAs(
        f"{PLAN.checkpoints}/{wildcards.experiment}/runs/{wildcards.cell}", "location"
    )


def train_inputs(wildcards):
    """The .beton files a cell reads (none for in-memory data) and the metrics.json of the parents it starts
    from (init_from / mask_from), which stands for their model.pt and snapshots.
    """
    return [
        *PLAN.beton_paths(wildcards.experiment).values(),
        *PLAN.lineage_inputs(cell_of(wildcards)),
    ]


# Snakemake calls an input function once per job (~50 µs each): a grid whose training jobs read no
# file (no .beton data, no lineage) declares none.
TRAIN_INPUTS = train_inputs if PLAN.training_reads_files() else []


train_gpus = experiment_resource("gpu", 0)
train_runtime = experiment_resource("runtime", 60)
train_mem_mb = experiment_resource("mem_mb", 4000)
train_threads = experiment_resource("threads", 1)


# -- the pre-warmed training server (bench_powerprop.training.server) ----------------------------
TRAIN_SERVER = {}


def train_server_wanted():
    """Local runs of CPU-only configs; GPU and cluster runs keep one process per training job."""
    local = workflow.executor_plugin.common_settings.local_exec
    return local and all(
        PLAN.experiment(name).get("resources", {}).get("gpu", 0) == 0
        and PLAN.experiment(name)["train"].get("device", "cpu") == "cpu"
        for name in PLAN.grids
    )


def train_server_numerics():
    """The numerics mode the server imports torch under: the experiments' mode (portable when they differ;
    the other mode's jobs then train in their own process)."""
    from bench_powerprop import numerics
    from bench_powerprop.training.options import train_options

    modes = {
        train_options(PLAN.experiment(name)["train"]).numerics for name in PLAN.grids
    }
    return modes.pop() if len(modes) == 1 else numerics.DEFAULT


def start_train_server():
    from bench_powerprop.training import server

    if train_server_wanted():
        TRAIN_SERVER["started"] = server.start(
            ".snakemake/log/train_server.log", mode=train_server_numerics()
        )


def stop_train_server():
    from bench_powerprop.training import server

    server.stop(TRAIN_SERVER.pop("started", None))
