"""Bad input fails before any job starts, with one line naming the field, and a non-zero exit."""

import math
import os
import subprocess
import sys

import pytest

from conftest import REPO, run_snakemake

BAD_CONFIGS = {
    "alpha_zero": ("experiments:\n  oneshot_digits:\n    grid:\n      - {method: [dense], alpha: [0], sparsity: [0], seed: [0]}\n",
                   "experiments.oneshot_digits.grid[0].alpha[0]"),
    "alpha_negative": ("experiments:\n  oneshot_digits:\n    grid:\n      - {method: [dense], alpha: [2, -1], sparsity: [0], seed: [0]}\n",
                       "experiments.oneshot_digits.grid[0].alpha[1]"),
    "keep_above_one": ("experiments:\n  oneshot_digits:\n    prune: {keep_levels: [0.5, 1.5]}\n",
                       "experiments.oneshot_digits.prune.keep_levels"),
    "keep_zero": ("experiments:\n  oneshot_digits:\n    prune: {keep_levels: {geomspace: [0.0, 1.0, 5]}}\n",
                  "experiments.oneshot_digits.prune.keep_levels"),
    "unknown_model": ("experiments:\n  oneshot_digits:\n    model: {name: transformer}\n",
                      "experiments.oneshot_digits.model.name"),
    "missing_data_path": ("experiments:\n  oneshot_mnist:\n    data: {name: mnist, root: /nonexistent/mnist}\n",
                          "experiments.oneshot_mnist.data.root"),
    "unknown_method": ("experiments:\n  oneshot_digits:\n    grid:\n      - {method: [magic], alpha: [1], sparsity: [0], seed: [0]}\n",
                       "experiments.oneshot_digits.grid[0].method"),
    "unknown_experiment": ("active_experiments: [nope]\n", "active_experiments"),
    "misspelled_train_key": ("experiments:\n  oneshot_digits:\n    train: {steps: -5}\n", "experiments.oneshot_digits.train.steps"),
    "unknown_method_option": ("experiments:\n  sparse_digits:\n    methods: {gmp: {no_such_option: 1}}\n",
                              "experiments.sparse_digits.methods.gmp.no_such_option: unknown option"),
    "method_option_out_of_range": ("experiments:\n  sparse_digits:\n    methods: {gmp: {frequency: 0}}\n",
                                   "experiments.sparse_digits.methods.gmp.frequency: must be an integer >= 1, got 0"),
    "method_option_wrong_choice": ("experiments:\n  sparse_digits:\n    methods: {rigl: {distribution: random}}\n",
                                   "experiments.sparse_digits.methods.rigl.distribution: must be one of"),
    "option_against_the_cell": ("experiments:\n  sparse_digits:\n    methods: {topkast: {backward_sparsity: 0.99}}\n",
                                "experiments.sparse_digits.methods.topkast.backward_sparsity: 0.99 exceeds the forward sparsity"),
    "variant_option": ("experiments:\n  sparse_digits:\n    variants: {rigl: {slow: {update_every: -1}}}\n"
                       "    grid:\n      - {method: [rigl], variant: [slow], alpha: [1], sparsity: [0.9], seed: [0]}\n",
                       "experiments.sparse_digits.variants.rigl.slow.update_every"),
    "undefined_variant": ("experiments:\n  sparse_digits:\n    grid:\n      - {method: [rigl], variant: [uniform], alpha: [1], "
                          "sparsity: [0.9], seed: [0]}\n", "experiments.sparse_digits.grid[0].variant: method 'rigl' has no variant"),
    "unknown_model_option": ("experiments:\n  oneshot_digits:\n    model: {name: mlp, hiden: [10]}\n",
                             "experiments.oneshot_digits.model.hiden: unknown option"),
    "unknown_data_option": ("experiments:\n  oneshot_digits:\n    data: {name: digits, val_fractoin: 0.2}\n",
                            "experiments.oneshot_digits.data.val_fractoin: unknown option"),
    "unknown_train_key": ("experiments:\n  oneshot_digits:\n    train: {stpes: 10}\n", "experiments.oneshot_digits.train"),
    "lineage_to_a_missing_cell": ("experiments:\n  sparse_digits:\n    grid:\n      - {method: [static], alpha: [1], "
                                  "sparsity: [0.9], seed: [0], init_from: {cell: {method: dense, sparsity: 0}, step: 0}}\n",
                                  "experiments.sparse_digits.grid[0].init_from: cell "
                                  "method~static/variant~default/alpha~1/sparsity~0.9/seed~0 "
                                  "would inherit from method~dense/variant~default/alpha~1/sparsity~0/seed~0, which is not in the grid"),
    "lineage_step_not_snapshotted": ("experiments:\n  sparse_digits:\n    grid:\n      - {method: [dense], alpha: [1], sparsity: [0], "
                                     "seed: [0]}\n      - {method: [static], alpha: [1], sparsity: [0.9], seed: [0], "
                                     "init_from: {cell: {method: dense, sparsity: 0}, step: 5}}\n",
                                     "experiments.sparse_digits.grid[1].init_from.step: 5 is not in the snapshot_steps"),
    "alpha_nan": ("experiments:\n  oneshot_digits:\n    grid:\n      - {method: [dense], alpha: [.nan], sparsity: [0], seed: [0]}\n",
                  "experiments.oneshot_digits.grid[0].alpha[0]: nan is not a finite number"),
    "alpha_inf": ("experiments:\n  oneshot_digits:\n    grid:\n      - {method: [dense], alpha: [.inf], sparsity: [0], seed: [0]}\n",
                  "experiments.oneshot_digits.grid[0].alpha[0]: inf is not a finite number"),
    "sparsity_nan": ("experiments:\n  sparse_digits:\n    grid:\n      - {method: [gmp], alpha: [1], sparsity: [.nan], seed: [0]}\n",
                     "experiments.sparse_digits.grid[0].sparsity[0]: nan is not a finite number"),
    "keep_level_nan": ("experiments:\n  oneshot_digits:\n    prune: {keep_levels: [0.5, .nan]}\n",
                       "experiments.oneshot_digits.prune.keep_levels[1]: nan is not a finite number"),
    "keep_level_above_one_names_the_level": ("experiments:\n  oneshot_digits:\n    prune: {keep_levels: [0.5, 1.5]}\n",
                                             "experiments.oneshot_digits.prune.keep_levels[1]: 1.5 is greater than the maximum of 1"),
    "geomspace_start_zero_names_it": ("experiments:\n  oneshot_digits:\n    prune: {keep_levels: {geomspace: [0.0, 1.0, 5]}}\n",
                                      "experiments.oneshot_digits.prune.keep_levels.geomspace[0]: "
                                      "0.0 is less than or equal to the minimum"),
    "duplicate_keep_levels": ("experiments:\n  oneshot_digits:\n    prune: {keep_levels: [0.5, 0.5]}\n",
                              "experiments.oneshot_digits.prune.keep_levels: [0.5, 0.5] has non-unique elements"),
    "empty_training_split": ("experiments:\n  oneshot_digits:\n    data: {name: digits, val_fraction: 0.99, test_fraction: 0.5}\n",
                             "experiments.oneshot_digits.data.test_fraction: val_fraction + test_fraction = 1.49"),
    "oneshot_without_prune": ("active_experiments: [bare]\nexperiments:\n  bare:\n    kind: oneshot\n    data: {name: digits}\n"
                              "    model: {name: mlp}\n    train: {steps: 10, batch_size: 10, lr: 0.1}\n"
                              "    grid:\n      - {method: [dense], alpha: [1], sparsity: [0], seed: [0]}\n",
                              "experiments.bare.prune: required by kind 'oneshot'"),
    "huge_seed": ("experiments:\n  oneshot_digits:\n    grid:\n      - {method: [dense], alpha: [1], sparsity: [0], "
                  "seed: [18446744073709551616]}\n",
                  "experiments.oneshot_digits.grid[0].seed[0]: 18446744073709551616 is greater than the maximum of 4294967295"),
    "float_seed": ("experiments:\n  oneshot_digits:\n    grid:\n      - {method: [dense], alpha: [1], sparsity: [0], seed: [1.0e+23]}\n",
                   "experiments.oneshot_digits.grid[0].seed[0]: 1e+23 is "),
    "batch_larger_than_the_training_set": ("experiments:\n  oneshot_digits:\n    train: {batch_size: 100000}\n",
                                           "experiments.oneshot_digits.train.batch_size: 100000 exceeds the 1258 "
                                           "training examples of digits"),
    "adaptive_alpha_from_one": ("experiments:\n  adaptive_alpha_digits:\n    grid:\n      - {method: [adaptive_alpha], alpha: [1], "
                                "sparsity: [0], seed: [0]}\n",
                                "experiments.adaptive_alpha_digits.methods.adaptive_alpha.adapt: adaptive α must start above 1"),
    "permuted_over_files": ("experiments:\n  continual_digits:\n    data: {name: permuted, base: {name: cifar10, root: /x}}\n",
                            "experiments.continual_digits.data.base.name: must be an in-memory dataset"),
    "permuted_missing_mnist": ("experiments:\n  continual_digits:\n    data: {name: permuted, base: {name: mnist, root: /nonexistent}}\n",
                               "experiments.continual_digits.data.base.root: path '/nonexistent' does not exist"),
    "mask_from_unsupported": ("experiments:\n  sparse_digits:\n    grid:\n      - {method: [gmp], alpha: [1], sparsity: [0.9], "
                              "seed: [0]}\n      - {method: [rigl], alpha: [1], sparsity: [0.9], seed: [0], "
                              "mask_from: {cell: {method: gmp}, step: final}}\n",
                              "experiments.sparse_digits.grid[1].mask_from: method 'rigl' does not use an inherited mask"),
}


@pytest.mark.parametrize("case", sorted(BAD_CONFIGS))
def test_bad_config_fails_before_any_job(case, workdir):
    text, field = BAD_CONFIGS[case]
    (workdir / "bad.yaml").write_text(text)
    result = run_snakemake("-n", "--configfile", "bad.yaml", cwd=workdir, check=False)
    assert result.returncode != 0
    lines = [line for line in (result.stdout + result.stderr).splitlines() if line.startswith("bench_powerprop: invalid config")]
    assert len(lines) == 1, result.stdout + result.stderr
    assert field in lines[0]
    assert not (workdir / "results").exists()


def test_validate_command(tmp_path):
    ok = subprocess.run([sys.executable, "-m", "bench_powerprop", "validate", str(REPO / "configs/default.yaml")],
                        capture_output=True, text=True)
    from bench_powerprop.config import load_configs
    from bench_powerprop.plan import Plan

    cells = len(Plan(load_configs([REPO / "configs/default.yaml"])).cells)
    assert ok.returncode == 0 and f"config ok: {cells} training cells" in ok.stdout
    (tmp_path / "bad.yaml").write_text(BAD_CONFIGS["alpha_zero"][0])
    bad = subprocess.run([sys.executable, "-m", "bench_powerprop", "validate", str(REPO / "configs/default.yaml"),
                          str(tmp_path / "bad.yaml")],
                         capture_output=True, text=True)
    assert bad.returncode == 1
    assert bad.stderr.strip().count("\n") == 0 and "alpha[0]" in bad.stderr


def test_validation_and_planning_import_no_torch():
    """Snakemake parses the workflow before any job: validation and the plan must stay cheap."""
    code = ("import sys; from bench_powerprop.config import load_configs, validate_config; from bench_powerprop.plan import Plan; "
            "c = load_configs(['configs/default.yaml']); validate_config(c); p = Plan(c); [p.spec(x) for x in p.cells]; "
            "print(sorted(m for m in ('torch', 'pandas', 'matplotlib', 'timm', 'ffcv') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize("name", ["a/b", "a b", "a-b", "café"])
def test_experiment_names_match_the_wildcard_constraint(name, workdir):
    (workdir / "bad.yaml").write_text(
        f"active_experiments: ['{name}']\nexperiments:\n  '{name}':\n    kind: sparse_training\n    data: {{name: digits}}\n"
        "    model: {name: mlp}\n    train: {steps: 10, batch_size: 10, lr: 0.1}\n"
        "    grid:\n      - {method: [dense], alpha: [1], sparsity: [0], seed: [0]}\n")
    result = run_snakemake("-n", "--configfile", "bad.yaml", cwd=workdir, check=False)
    lines = [line for line in (result.stdout + result.stderr).splitlines() if line.startswith("bench_powerprop: invalid config")]
    assert result.returncode != 0 and len(lines) == 1, result.stdout + result.stderr
    assert f"experiments: '{name}' does not match" in lines[0]


def test_values_that_print_alike_still_get_their_own_run_directories():
    from bench_powerprop.config import load_yaml, validate_config
    from bench_powerprop.plan import Plan

    config = load_yaml(REPO / "configs" / "default.yaml")
    config["active_experiments"] = ["oneshot_digits"]
    config["experiments"]["oneshot_digits"]["grid"] = [{"method": ["dense"], "alpha": [1, 1.0000001], "sparsity": [0], "seed": [0]}]
    validate_config(config)
    plan = Plan(config)
    assert sorted(plan.run_dir(cell).split("/alpha~")[1].split("/")[0] for cell in plan.cells) == ["1", "1.0000001"]


def test_yaml_errors_and_missing_files_name_the_file_and_line(tmp_path):
    (tmp_path / "broken.yaml").write_text("experiments:\n  oneshot_digits:\n    train: {steps: 10\n")
    cases = [(["broken.yaml"], "broken.yaml:4:1: invalid YAML"), (["nothere.yaml"], "config file nothere.yaml does not exist")]
    for arguments, expected in cases:
        result = subprocess.run([sys.executable, "-m", "bench_powerprop", "validate", *arguments], capture_output=True, text=True,
                                cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(REPO)})
        assert result.returncode == 1 and result.stderr.strip().count("\n") == 0, result.stderr
        assert expected in result.stderr


def test_garbage_mnist_files_are_named_before_any_job(tmp_path, workdir):
    from bench_powerprop.data.idx import check_mnist_root

    root = tmp_path / "mnist"
    root.mkdir()
    assert "not found" in check_mnist_root(root)
    shapes = {"train-images-idx3-ubyte": [4, 2, 2], "train-labels-idx1-ubyte": [4],
              "t10k-images-idx3-ubyte": [2, 2, 2], "t10k-labels-idx1-ubyte": [2]}
    for name, shape in shapes.items():  # a valid IDX file: magic (uint8, ndim), sizes, one byte per item
        header = bytes([0, 0, 8, len(shape)]) + b"".join(size.to_bytes(4, "big") for size in shape)
        (root / name).write_bytes(header + bytes(math.prod(shape)))
    assert check_mnist_root(root) is None
    (root / "t10k-images-idx3-ubyte").write_bytes((root / "t10k-images-idx3-ubyte").read_bytes()[:-3])
    assert "truncated or corrupt" in check_mnist_root(root)
    (root / "train-labels-idx1-ubyte").write_bytes(b"garbage, not an IDX file")
    assert "not an IDX file" in check_mnist_root(root)
    (workdir / "bad.yaml").write_text(f"experiments:\n  oneshot_mnist:\n    data: {{name: mnist, root: {root}}}\n")
    result = run_snakemake("-n", "--configfile", "bad.yaml", cwd=workdir, check=False)
    assert result.returncode != 0
    assert f"experiments.oneshot_mnist.data.root: {root}/train-labels-idx1-ubyte is not an IDX file" in result.stderr
