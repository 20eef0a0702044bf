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
    assert ok.returncode == 0 and "99 training cells" in ok.stdout
    (tmp_path / "bad.yaml").write_text(BAD_CONFIGS["alpha_zero"][0])
    bad = subprocess.run([sys.executable, "-m", "bench_powerprop", "validate", str(REPO / "configs/default.yaml"), str(tmp_path / "bad.yaml")],
                         capture_output=True, text=True)
    assert bad.returncode == 1
    assert bad.stderr.strip().count("\n") == 0 and "alpha[0]" in bad.stderr


def test_source_scan_finds_exactly_the_registered_methods():
    """Config validation reads method names from source (no torch import); it must match the registry."""
    from bench_powerprop.config import registered_method_names
    from bench_powerprop.methods import METHODS

    assert registered_method_names() == set(METHODS)
