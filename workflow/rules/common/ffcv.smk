# Helpers of workflow/rules/ffcv.smk.


def beton_file(dataset, split):
    """Output pattern of one .beton file (``{experiment}`` left in)."""
    return f"{RESULTS}/datasets/{{experiment}}/{dataset}/{split}.beton"


def experiment_data(wildcards):
    """The experiment's data config with every dataset option filled in."""
    from bench_powerprop.data.datasets import resolve_data_config

    return resolve_data_config(PLAN.experiment(wildcards.experiment)["data"])


def cifar10_root(wildcards):
    return experiment_data(wildcards)["root"]


def cifar10_batch_files(wildcards):
    """The six CIFAR-10 python pickles (inputs, so replacing them rewrites the .beton files)."""
    from bench_powerprop.data.ffcv_io import CIFAR10_SPLIT_FILES, resolve_cifar10_dir

    root = resolve_cifar10_dir(cifar10_root(wildcards))
    return [
        str(root / name) for names in CIFAR10_SPLIT_FILES.values() for name in names
    ]


def imagenet_train_dir(wildcards):
    return experiment_data(wildcards)["train_dir"]


def imagenet_val_dir(wildcards):
    return experiment_data(wildcards)["val_dir"]


def imagenet_beton_options(wildcards):
    """``write-imagenet`` options (a list: the rule's ``:q`` quotes each element) from the experiment's ``data.beton`` (FFCV's write settings, defaults filled in)."""
    from bench_powerprop.data.datasets.imagenet import BetonOptions

    options = BetonOptions.parse(
        experiment_data(wildcards)["beton"], "data.beton"
    ).as_dict()
    return [
        part
        for name, value in sorted(options.items())
        for part in (f"--{name.replace('_', '-')}", str(value))
    ]


beton_threads = experiment_resource("beton_threads", 8)
beton_runtime = experiment_resource("beton_runtime", 240)
beton_mem_mb = experiment_resource("beton_mem_mb", 16000)
