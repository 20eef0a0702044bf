"""configs/published_results.csv: every number is sourced, missing numbers are explicit, keys are unique."""

import math

import pandas as pd
import pytest

from bench_powerprop.reporting.published import PUBLISHED_COLUMNS, PUBLISHED_KEY, load_published

from conftest import REPO

PUBLISHED = REPO / "configs" / "published_results.csv"
MISSING_MARK = "not transcribed"


@pytest.fixture(scope="module")
def raw():
    """The CSV as text cells (empty string = empty cell), so nothing is silently coerced."""
    return pd.read_csv(PUBLISHED, dtype=str, keep_default_na=False)


def is_number(text: str) -> bool:
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False


def test_columns_are_exactly_the_documented_ones(raw):
    assert list(raw.columns) == PUBLISHED_COLUMNS


def test_every_row_names_its_source(raw):
    assert (raw["source"].str.strip().str.len() > 20).all(), raw.loc[raw["source"].str.len() <= 20]
    assert (raw["paper"].str.strip() != "").all()


def test_values_are_numbers_or_explicitly_missing(raw):
    for row in raw.itertuples():
        if row.value.strip() == "":
            assert MISSING_MARK in row.source.lower(), f"row {row.Index}: empty value without '{MISSING_MARK}' in source"
        else:
            assert is_number(row.value), f"row {row.Index}: value {row.value!r} is not a number"
            assert 0 < float(row.value) <= 100, f"row {row.Index}: accuracy {row.value} is not a percentage"
            assert row.metric == "top1_accuracy_percent"


def test_alpha_is_a_number_unless_the_whole_row_is_missing(raw):
    for row in raw.itertuples():
        if row.alpha.strip() == "":
            assert row.value.strip() == "", f"row {row.Index}: a transcribed value needs its alpha"
        else:
            assert is_number(row.alpha) and float(row.alpha) > 0, f"row {row.Index}: alpha {row.alpha!r}"


def test_sparsities_are_fractions_below_one(raw):
    sparsities = raw["sparsity"].astype(float)
    assert ((sparsities >= 0) & (sparsities < 1)).all()
    assert (raw.loc[raw["method"] == "dense", "sparsity"].astype(float) == 0).all()


def test_no_duplicate_keys(raw):
    duplicated = raw[raw.duplicated(PUBLISHED_KEY, keep=False)]
    assert duplicated.empty, duplicated[PUBLISHED_KEY]


def test_the_report_loader_reads_it_with_missing_values_as_nan():
    published = load_published(PUBLISHED)
    assert len(published) == len(pd.read_csv(PUBLISHED))
    assert published["value"].isna().any() and published["value"].notna().any()
    assert published["sparsity"].dtype.kind == "f"


def test_the_cited_numbers_we_rely_on_are_present():
    published = load_published(PUBLISHED).set_index(["paper", "model", "method", "variant", "sparsity"])["value"]
    assert published[("Evci et al. 2020 (RigL)", "resnet50", "dense", "default", 0.0)] == 76.8
    assert published[("Evci et al. 2020 (RigL)", "resnet50", "rigl", "default", 0.8)] == 75.12
    assert published[("Evci et al. 2020 (RigL)", "resnet50", "rigl", "uniform", 0.9)] == 72.02
    assert published[("Gale et al. 2019 (State of Sparsity)", "resnet50", "gmp", "default", 0.95)] == 70.59
    topkast = "Jayakumar et al. 2020 (Top-KAST)"
    assert published[(topkast, "resnet50", "topkast", "b80", 0.9)] == 73.03
    assert published[(topkast, "resnet50", "topkast", "b90_every100", 0.95)] == 70.38


def test_synflow_curves_average_to_the_published_means():
    curves = pd.read_csv(REPO / "configs" / "published_curves" / "synflow_cifar10.csv")
    assert set(curves["method"]) == {"snip", "grasp", "synflow", "random", "magnitude"}
    assert set(curves["model"]) == {"vgg16_bn", "resnet18"} and set(curves["run"]) == {0, 1, 2}
    means = curves.groupby(["model", "method", "sparsity"])["top1_accuracy_percent"].mean()
    published = load_published(PUBLISHED)
    synflow = published[published["paper"] == "Tanaka et al. 2020 (SynFlow)"].set_index(["model", "method", "sparsity"])["value"]
    assert len(synflow) == len(means) == 2 * 5 * 13
    for key, value in means.items():
        assert synflow[key] == pytest.approx(value, abs=1e-4), key


def test_the_rigl_authors_cifar10_numbers_are_transcribed_from_the_issue_thread(raw):
    """google-research/rigl issue #8: the first author's WRN-22-2 CIFAR-10 accuracies, four sparsities per series."""
    rigl = raw[(raw["paper"] == "Evci et al. 2020 (RigL)") & (raw["dataset"] == "cifar10")]
    assert set(rigl["model"]) == {"wrn_22_2"} and (rigl["source"].str.contains("github.com/google-research/rigl/issues/8")).all()
    table = {(row.method, row.variant, row.sparsity): row.value for row in rigl.itertuples()}
    assert len(table) == 20 and set(rigl["sparsity"]) == {"0.5", "0.8", "0.9", "0.95"}
    assert [table[("rigl", "", s)] for s in ("0.5", "0.8", "0.9", "0.95")] == ["94.2", "93.6", "92.9", "91.8"]
    assert [table[("static", "", s)] for s in ("0.5", "0.8", "0.9", "0.95")] == ["94.1", "92.9", "91.5", "89.0"]
    assert [table[("gmp", "erk", s)] for s in ("0.5", "0.8", "0.9", "0.95")] == ["94.0", "93.6", "93.3", "92.3"]
    for row in rigl.itertuples():  # each value is the posted fraction, as a percentage
        posted = row.source.split("Acc: ")[1][:5]
        assert f"{float(posted) * 100:.1f}" == row.value
