# Config validation, the grid, and every path/parameter helper the rules use.
import json
import os
import sys

sys.path.insert(0, workflow.basedir)

from bench_powerprop.config import cell_spec, export_job_environment, grid_cells, validate_or_exit
from bench_powerprop.io import spec_hash


export_job_environment(workflow.basedir)

validate_or_exit(config)

RESULTS = config.get("results_dir", "results")
CHECKPOINTS = config.get("checkpoint_dir", "checkpoints")
CONDA_ENV = "../../environment.yml"
CELLS = grid_cells(config)
CELL_PATH = "{experiment}/runs/method~{method}/alpha~{alpha}/sparsity~{sparsity}/seed~{seed}"


wildcard_constraints:
    experiment="[A-Za-z0-9_]+",
    method="[a-z0-9_]+",
    alpha="[0-9.e+-]+",
    sparsity="[0-9.e+-]+",
    seed="[0-9]+",


def experiment_config(name):
    return config["experiments"][name]


def experiments_of_kind(kind):
    return [name for name in config["active_experiments"] if experiment_config(name)["kind"] == kind]


def cells_of(experiment):
    return [cell for cell in CELLS if cell.experiment == experiment]


def cell_of(wildcards):
    for cell in CELLS:
        if cell.wildcards == {key: wildcards[key] for key in cell.wildcards}:
            return cell
    raise ValueError(f"no grid cell matches {dict(wildcards)}")


# -- paths -------------------------------------------------------------------------------
def run_file(name):
    """Pattern of a file in a cell's run directory (wildcards left in)."""
    return f"{RESULTS}/{CELL_PATH}/{name}"


def cell_log(step):
    return f"{RESULTS}/{{experiment}}/logs/{step}/{CELL_PATH.split('/', 2)[2]}.log"


def experiment_file(name):
    return f"{RESULTS}/{{experiment}}/{name}"


def experiment_log(step):
    return f"{RESULTS}/{{experiment}}/logs/{step}.log"


def run_dir_of(cell):
    return f"{RESULTS}/{CELL_PATH.format(**cell.wildcards)}"


def cell_files(experiment, name):
    return [f"{run_dir_of(cell)}/{name}" for cell in cells_of(experiment)]


# -- params ------------------------------------------------------------------------------
def train_spec_json(wildcards):
    return json.dumps(training_spec(cell_of(wildcards)), sort_keys=True)


def run_dir(wildcards):
    return run_dir_of(cell_of(wildcards))


def checkpoint_dir(wildcards):
    return f"{CHECKPOINTS}/{CELL_PATH.format(**cell_of(wildcards).wildcards)}"


def expected_hashes_json(wildcards):
    cells = cells_of(wildcards.experiment)
    return json.dumps({run_dir_of(cell): spec_hash(training_spec(cell)) for cell in cells})


def experiment_info_json(wildcards):
    experiment = experiment_config(wildcards.experiment)
    train = experiment["train"]
    info = {
        "name": wildcards.experiment,
        "description": experiment.get("description", ""),
        "data": experiment["data"]["name"],
        "budget": f"{train['steps']} steps of batch {train['batch_size']}",
    }
    return json.dumps(info)


def prune_json(wildcards):
    return json.dumps(experiment_config(wildcards.experiment)["prune"])


# -- resources (partition/account belong in profiles/slurm) ------------------------------
def experiment_resource(name, default):
    def lookup(wildcards):
        return experiment_config(wildcards.experiment).get("resources", {}).get(name, default)

    lookup.__name__ = f"experiment_{name}"
    return lookup


train_gpus = experiment_resource("gpu", 0)
train_runtime = experiment_resource("runtime", 60)
train_mem_mb = experiment_resource("mem_mb", 4000)
train_threads = experiment_resource("threads", 1)


# -- one-shot pruning experiments --------------------------------------------------------
def oneshot_targets(experiment):
    names = [
        "tables/oneshot_runs.csv",
        "tables/oneshot_summary.csv",
        "tables/oneshot_summary.md",
        "figures/oneshot_accuracy_vs_weights_remaining.png",
        "figures/weight_histograms.png",
    ]
    return [f"{RESULTS}/{experiment}/{name}" for name in names]


def oneshot_prune_files(wildcards):
    return cell_files(wildcards.experiment, "oneshot_prune.csv")


def histogram_models(wildcards):
    """model.pt of the lowest seed of every α (one histogram panel per α)."""
    first_seed = {}
    for cell in cells_of(wildcards.experiment):
        first_seed.setdefault(cell.alpha, cell)
    return [f"{run_dir_of(cell)}/model.pt" for cell in first_seed.values()]


def experiment_title(wildcards):
    return f"{wildcards.experiment} ({experiment_config(wildcards.experiment)['data']['name']})"


# -- targets -----------------------------------------------------------------------------
def all_targets():
    targets = []
    for experiment in experiments_of_kind("oneshot"):
        targets += oneshot_targets(experiment)
    for experiment in experiments_of_kind("sparse_training"):
        targets += sparse_targets(experiment)
    return targets


# -- sparse training experiments (kind: sparse_training; rules in sparse.smk) -------------
SPARSE_TABLES = {
    "runs": "tables/sparse_runs.csv",
    "summary": "tables/sparse_summary.csv",
    "paper_csv": "tables/sparse_paper_table.csv",
    "paper_md": "tables/sparse_paper_table.md",
}
SPARSE_FIGURE = "figures/sparse_accuracy_vs_sparsity.png"


def sparse_targets(experiment):
    return [f"{RESULTS}/{experiment}/{name}" for name in [*SPARSE_TABLES.values(), SPARSE_FIGURE]]


def sparse_table(key):
    """Output pattern of one sparse table (``{experiment}`` left in)."""
    return experiment_file(SPARSE_TABLES[key])


def sparse_figure():
    return experiment_file(SPARSE_FIGURE)


def sparse_metrics_files(wildcards):
    return cell_files(wildcards.experiment, "metrics.json")


def published_results_path():
    """The published-numbers CSV; a relative path is read from the repository (like the configfile)."""
    path = config.get("published_results", "")
    return os.path.join(workflow.basedir, path) if path else ""


def published_results_input(wildcards):
    """Input list, so editing the CSV re-runs the aggregation; empty when none is configured."""
    return [path for path in [published_results_path()] if path]


def sparse_experiment_info_json(wildcards):
    """experiment_info_json plus the model, train and method options (table header, published-row join)."""
    experiment = experiment_config(wildcards.experiment)
    info = json.loads(experiment_info_json(wildcards))
    info.update(model=experiment["model"], train=experiment["train"], methods=experiment.get("methods", {}))
    return json.dumps(info, sort_keys=True)


# -- vision data (FFCV .beton files, rules in ffcv.smk) and multi-GPU launch ----------------
# Each vision experiment gets its own .beton files under {results}/datasets/{experiment}/, written
# from the user's local data (never downloaded). Their paths join the cell's data config, so they
# are part of the hashed training spec, and the write settings (data.beton) are too.
BETON_SPLITS = {
    "cifar10": {"train_beton": "train", "test_beton": "test"},
    "imagenet": {"train_beton": "train", "val_beton": "val"},
}
IMAGENET_BETON_DEFAULTS = {  # ffcv_io's write-imagenet defaults; configs/imagenet_resnet50.yaml cites FFCV's
    "max_resolution": 256,
    "jpeg_quality": 90,
    "compress_probability": 0.5,
    "write_mode": "proportion",
    "chunksize": 100,
}


def beton_file(dataset, split):
    """Output pattern of one .beton file (``{experiment}`` left in)."""
    return f"{RESULTS}/datasets/{{experiment}}/{dataset}/{split}.beton"


def beton_paths(experiment):
    """``{data-config key: path}`` of an experiment's .beton files; {} for in-memory data (digits, MNIST)."""
    dataset = experiment_config(experiment)["data"]["name"]
    splits = BETON_SPLITS.get(dataset, {})
    return {key: beton_file(dataset, split).format(experiment=experiment) for key, split in splits.items()}


def training_spec(cell):
    """The spec a training job gets (``cell_spec`` plus the workflow's .beton paths in ``data``)."""
    spec = cell_spec(config, cell)
    betons = beton_paths(cell.experiment)
    if betons:
        spec["data"] = {**spec["data"], **betons}
    return spec


def train_dataset_inputs(wildcards):
    """The .beton files a training cell reads ([] for digits/MNIST, which are read in memory)."""
    return list(beton_paths(wildcards.experiment).values())


def train_launcher(wildcards):
    """``python``, or torchrun with one process per GPU when the experiment asks for more than one."""
    gpus = train_gpus(wildcards)
    if gpus > 1:
        return f"python -m torch.distributed.run --standalone --nproc_per_node={gpus}"
    return "python"


def cifar10_root(wildcards):
    return experiment_config(wildcards.experiment)["data"]["root"]


def cifar10_batch_files(wildcards):
    """The six CIFAR-10 python pickles (inputs, so replacing them rewrites the .beton files)."""
    from bench_powerprop.data.ffcv_io import CIFAR10_SPLIT_FILES, resolve_cifar10_dir

    root = resolve_cifar10_dir(cifar10_root(wildcards))
    return [str(root / name) for names in CIFAR10_SPLIT_FILES.values() for name in names]


def imagenet_dir(split):
    def lookup(wildcards):
        return experiment_config(wildcards.experiment)["data"][f"{split}_dir"]

    lookup.__name__ = f"imagenet_{split}_dir"
    return lookup


imagenet_train_dir = imagenet_dir("train")
imagenet_val_dir = imagenet_dir("val")


def imagenet_beton_options(wildcards):
    """``write-imagenet`` options from the experiment's ``data.beton`` (FFCV's write settings)."""
    options = {**IMAGENET_BETON_DEFAULTS, **experiment_config(wildcards.experiment)["data"].get("beton", {})}
    return " ".join(f"--{name.replace('_', '-')} {value}" for name, value in sorted(options.items()))


beton_threads = experiment_resource("beton_threads", 8)
beton_runtime = experiment_resource("beton_runtime", 240)
beton_mem_mb = experiment_resource("beton_mem_mb", 16000)
