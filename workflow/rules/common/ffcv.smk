# Helpers of workflow/rules/ffcv.smk: what the experiment's dataset declares about its .beton files.


wildcard_constraints:
    dataset=r"[A-Za-z0-9_]+",
    stem=r"[A-Za-z0-9_]+",


def beton_dataset(wildcards):
    """The experiment's data options (parsed, defaults filled in) as its dataset's module declares them."""
    from bench_powerprop.data.datasets import DATASETS

    data = PLAN.experiment(wildcards.experiment)["data"]
    return DATASETS.options(wildcards.dataset).parse(data, "data")


def beton_sources(wildcards):
    """The files the writer reads (inputs, so replacing them rewrites the .beton file)."""
    return beton_dataset(wildcards).beton_sources(wildcards.stem)


def beton_writer_data(wildcards):
    """The options the writer reads (``WRITER_OPTIONS``) as JSON, one argument (the rule's ``:q`` quotes it):
    a change of any other data option (a loader setting) rewrites no .beton, so retrains no cell.
    """
    options = beton_dataset(wildcards)
    written = {name: getattr(options, name) for name in options.WRITER_OPTIONS}
    return json.dumps({"name": wildcards.dataset, **written}, sort_keys=True)


beton_threads = experiment_resource("beton_threads", 8)
beton_runtime = experiment_resource("beton_runtime", 240)
beton_mem_mb = experiment_resource("beton_mem_mb", 16000)
