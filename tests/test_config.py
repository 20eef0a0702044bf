"""Bad input fails before any job starts, with one line naming the field, and a non-zero exit."""

import pytest

from conftest import run_snakemake

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
    "missing_data_path": ("experiments:\n  oneshot_digits:\n    data: {name: mnist, root: /nonexistent/mnist}\n",
                          "experiments.oneshot_digits.data.root"),
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
    import subprocess
    import sys

    from conftest import REPO

    ok = subprocess.run([sys.executable, "-m", "bench_powerprop", "validate", str(REPO / "configs/default.yaml")],
                        capture_output=True, text=True)
    assert ok.returncode == 0 and "167 training cells" in ok.stdout
    (tmp_path / "bad.yaml").write_text(BAD_CONFIGS["alpha_zero"][0])
    bad = subprocess.run([sys.executable, "-m", "bench_powerprop", "validate", str(REPO / "configs/default.yaml"),
                          str(tmp_path / "bad.yaml")],
                         capture_output=True, text=True)
    assert bad.returncode == 1
    assert bad.stderr.strip().count("\n") == 0 and "alpha[0]" in bad.stderr


def test_validation_and_planning_import_no_torch():
    """Snakemake parses the workflow before any job: validation and the plan must stay cheap."""
    import subprocess
    import sys

    from conftest import REPO

    code = ("import sys; from bench_powerprop.config import load_configs, validate_config; from bench_powerprop.plan import Plan; "
            "c = load_configs(['configs/default.yaml']); validate_config(c); p = Plan(c); [p.spec(x) for x in p.cells]; "
            "print(sorted(m for m in ('torch', 'pandas', 'matplotlib', 'timm', 'ffcv') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
