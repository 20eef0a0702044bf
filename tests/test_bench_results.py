"""The benchmark numbers bench/README.md and docs/benchmarks.md quote are the ones in the committed result files."""

import re

import pytest

from conftest import REPO

RESULTS = REPO / "bench" / "results"
MACHINE = "cpu2-amd-epyc"
STEP_ROW = re.compile(r"^powerprop α=2 \+ masks 90%\s+[\d.]+\s+[\d.]+%\s+([\d.]+)x$", re.MULTILINE)


def planning(name):
    text = (RESULTS / name).read_text()
    ours, bare, ratio = re.search(r"workflow ([\d.]+) s, bare Snakefile ([\d.]+) s, ratio ([\d.]+)x", text).groups()
    return ours, bare, f"{float(ratio):.2f}"


def startup(name):
    return re.search(r"median ([\d.]+) s", (RESULTS / name).read_text()).group(1)


def step_ratios(name):
    """Powerprop α=2 + 90% masks vs dense: (digits MLP, ResNet-18 batch 32), rounded as the READMEs quote them."""
    return tuple(f"{float(ratio):.2f}" for ratio in STEP_ROW.findall((RESULTS / name).read_text()))[:2]


@pytest.mark.parametrize("version", ["now", "before-e92eedf"])
def test_bench_readme_quotes_the_committed_results(version):
    prefix = "" if version == "now" else f"{version}_"
    table = (REPO / "bench" / "README.md").read_text()
    ours, _, ratio = planning(f"planning_2000-cells_{prefix}{MACHINE}.txt")
    assert f"{ours} s ({ratio}× bare)" in table
    assert f"| {startup(f'startup_{prefix}{MACHINE}.txt')} s |" in table
    mlp, resnet = step_ratios(f"step_time_{prefix}{MACHINE}.txt")
    assert f"| {mlp}× |" in table and f"| {resnet}× |" in table


def test_both_benchmark_pages_quote_the_current_10000_cell_planning_and_startup():
    ours, bare, ratio = planning(f"planning_{MACHINE}.txt")
    mlp, resnet = step_ratios(f"step_time_{MACHINE}.txt")
    bench_readme, readme = (REPO / "bench" / "README.md").read_text(), (REPO / "docs" / "benchmarks.md").read_text()
    assert f"{ours} s ({ratio}× a bare Snakefile's {bare} s)" in bench_readme
    assert f"{ours} s = {ratio}× a bare Snakefile" in readme
    for quoted in (f"| {startup(f'startup_{MACHINE}.txt')} s |", f"| {mlp}× |", f"| {resnet}× |"):
        assert quoted in readme


def test_every_row_of_the_bench_table_names_a_committed_result_file():
    """A number without a committed file behind it is not quoted: each row's file column matches a file."""
    text = (REPO / "bench" / "README.md").read_text()
    table = text[text.index("| what | before"):].split("\n\n", 1)[0]
    rows = table.splitlines()[2:]
    assert rows
    for row in rows:
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        quoted, file = cells[2], cells[-1].strip("`")
        if quoted.startswith("not measured"):
            assert file == "—", row
            continue
        assert list(RESULTS.glob(file)), f"no bench/results/{file} behind: {row}"
