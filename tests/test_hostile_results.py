"""Hostile strings in every config string a page can show, and a results folder tampered with after a run.

One tiny run (one cell with snapshots, its report built as make run builds it) with a script payload in every
string a config can set; then the pages are opened in headless Chromium (no payload runs), and the run folder is
tampered with: a FIFO for metrics.json, a ``snapshots/`` symlinked out of the results, a read-only tree holding a
damaged cell. Every probe goes through the real entry points (``validate``, ``status``, ``snakemake``, ``train``).
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from chromium import Browser, find_chromium
from conftest import REPO, STYLESHEET, run_snakemake
from helpers import digits_config, run_folder, train_command

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

DEFAULT = str(REPO / "configs" / "default.yaml")
#: Runs where the HTML parser sees markup: adds a <pwned> element and renames the page. (A value holding "</", which
#: would close the report's own script block, is refused by validate: tests/test_security.py.)
SCRIPT = "document.title='PWNED';document.body.appendChild(document.createElement('pwned'))"
PAYLOAD = f"<img src=x onerror=\"{SCRIPT}\"><svg onload=\"{SCRIPT}\"><script>{SCRIPT}"
PATH_PAYLOAD = f"<img src=x onerror=\"{SCRIPT}\">"
AXES = "oneshot_digits/runs/method~dense/variant~default/alpha~2/sparsity~0/seed~0"


def cli(*args, **kwargs):
    return subprocess.run([sys.executable, "-m", "bench_powerprop", *map(str, args)], capture_output=True, text=True,
                          timeout=300, **kwargs)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """The tiny run: validate --write-config with a payload override (make run's route), then snakemake and its report."""
    workdir = tmp_path_factory.mktemp("hostile")
    for name in ("configs", "profiles"):
        (workdir / name).symlink_to(REPO / name)
    config = digits_config("dense", steps=20, log_every=10, eval_every=20, checkpoint_every=10)
    experiment = config["experiments"]["oneshot_digits"]
    experiment["grid"][0]["snapshot_steps"] = [0, 10]
    experiment["prune"] = {"keep_levels": [0.2, 1.0]}
    experiment["description"] = PAYLOAD
    config.update(results_dir=str(workdir / f"out {PATH_PAYLOAD}"), checkpoint_dir=str(workdir / f"ck {PATH_PAYLOAD}"))
    source, merged = workdir / "hostile.yaml", workdir / "merged.yaml"
    source.write_text(json.dumps(config))
    override = f'experiments.oneshot_digits.description=<img src=x onerror="{SCRIPT}">'  # markup Markdown passes on
    validated = cli("validate", DEFAULT, source, "--set", override, "--write-config", merged)
    assert validated.returncode == 0, validated.stderr
    results = Path(config["results_dir"])
    run_snakemake("-c2", "--configfile", str(merged), "--report", str(results / "report.html"), "--report-after-run",
                  "--report-stylesheet", str(STYLESHEET), cwd=workdir)
    return {"workdir": workdir, "results": results, "config": merged, "override": override,
            "cell": run_folder(results / AXES)}


# -- pages ------------------------------------------------------------------------------------------
def test_the_provenance_page_lists_the_applied_override_as_text(run):
    text = (run["results"] / "reproduction" / "provenance.md").read_text()
    assert run["override"].replace("|", "\\|") in text  # what was applied, passed beside the config
    page = (run["results"] / "reproduction" / "provenance.html").read_text()
    assert "<img" not in page and "&lt;img src=x onerror=" in page


@pytest.fixture(scope="module")
def chromium():
    executable = find_chromium()
    if executable is None and os.geteuid() == 0:
        subprocess.run(["bash", str(REPO / "scripts" / "install_chromium.sh")], check=False)
        executable = find_chromium()
    if executable is None:
        pytest.skip("chromium is not installed and could not be installed (needs root and apt-get: scripts/install_chromium.sh)")
    return executable


def not_run(page, context=None) -> None:
    page.wait_for("document.readyState === 'complete'", context=context)
    assert page.evaluate("document.title", context) != "PWNED"
    assert page.evaluate("document.querySelectorAll('pwned').length", context) == 0


@pytest.mark.browser
def test_no_payload_runs_in_any_page_the_harness_writes(run, chromium):
    pages = sorted(run["results"].rglob("*.html"))
    assert {path.name for path in pages} >= {"provenance.html", "claims.html", "claims_overview.html", "oneshot_summary.html",
                                             "report.html"}
    with Browser(chromium) as browser:
        for path in pages:
            page = browser.open(path.as_uri())
            not_run(page)
            if path.name == "provenance.html":  # the payload is on the page, as text
                assert run["override"] in page.evaluate("document.body.textContent")


#: Click the menu entry ``%s`` until the page shows ``%s`` (React re-renders the menu after each click).
CLICK_UNTIL = """(() => {
    const shown = %s;
    if (shown) return true;
    const link = [...document.querySelectorAll('nav a')].find(a => a.textContent.trim() === %s);
    if (link) link.click();
    return null;
})()"""
SHOWN_PAGE = """(document.querySelector('iframe[src^="data:text/html"]') || {}).src"""


def navigate(page, entry: str, until: str):
    return page.wait_for(CLICK_UNTIL % (until, json.dumps(entry)))


@pytest.mark.browser
def test_no_payload_runs_in_the_report_or_the_pages_it_embeds(run, chromium):
    """Snakemake's report shows our pages in iframes without a sandbox attribute: each page's own policy forbids scripts."""
    with Browser(chromium) as browser:
        page = browser.open((run["results"] / "report.html").as_uri())
        page.wait_for("document.querySelector('#app table') !== null")
        not_run(page)
        for subcategory in ("Provenance", "Claims"):
            navigate(page, "Reproduction summary", f"[...document.querySelectorAll('nav a')].some(a => a.textContent.trim() === "
                                                   f"{json.dumps(subcategory)})")
            navigate(page, subcategory, "document.querySelector('nav a[iconname=eye]')")
            shown = page.wait_for(f"(() => {{ const src = {SHOWN_PAGE}; if (src) return src; "  # the page, not the figure
                                  "const eyes = document.querySelectorAll('nav a[iconname=eye]'); "
                                  "window.eye = ((window.eye || 0) + 1) % eyes.length; eyes[window.eye].click(); return null; })()")
            frame = page.frame_context(shown[:120])
            page.wait_for("document.readyState === 'complete' && document.querySelector('table') !== null", context=frame)
            not_run(page, frame)
            not_run(page)
            page.evaluate("document.querySelector('nav ol li a').click()")  # home


# -- a results folder tampered with ------------------------------------------------------------------
def test_a_fifo_for_metrics_json_is_damage_never_read(run):
    cell = run["cell"]
    saved = (cell / "metrics.json").read_bytes()
    (cell / "metrics.json").unlink()
    os.mkfifo(cell / "metrics.json")
    try:
        status = cli("status", DEFAULT, run["config"], cwd=run["workdir"])
        assert f"{cell}: damaged: metrics.json is not a regular file" in status.stdout, status.stdout + status.stderr
        planned = run_snakemake("-n", "--configfile", str(run["config"]), cwd=run["workdir"], timeout=120)
        assert f"{cell}: metrics.json is not a regular file; a real run retrains it" in planned.stderr
    finally:
        (cell / "metrics.json").unlink()
        (cell / "metrics.json").write_bytes(saved)


def test_training_never_writes_through_a_symlinked_snapshots_folder(run, tmp_path):
    """Training clears the run folder before it trains (a symlink goes, never its target) and publishes snapshots
    only into a real folder (a link made while it trains is refused in one line)."""
    outside = tmp_path / "outside"
    outside.mkdir()
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "snapshots").symlink_to(outside)
    spec = json.loads((run["cell"] / "run.json").read_text())["spec"]
    result = subprocess.run(train_command(spec, run_dir, tmp_path / "ck"), capture_output=True, text=True, timeout=300)
    assert "Traceback" not in result.stderr, result.stderr
    if result.returncode == 0:
        assert (run_dir / "snapshots").is_dir() and not (run_dir / "snapshots").is_symlink()
    else:
        lines = [line for line in result.stderr.splitlines() if line.startswith("bench_powerprop:")]
        assert len(lines) == 1 and f"{run_dir / 'snapshots'}: not a folder of the run directory" in lines[0], result.stderr
    assert not list(outside.iterdir())


def test_a_snapshots_symlink_in_a_finished_cell_is_repaired_without_touching_its_target(run, tmp_path):
    cell = run["cell"]
    outside = tmp_path / "outside"
    shutil.copytree(cell / "snapshots", outside)
    shutil.rmtree(cell / "snapshots")
    (cell / "snapshots").symlink_to(outside)
    status = cli("status", DEFAULT, run["config"], cwd=run["workdir"])
    assert f"{cell}: damaged: snapshots is a symbolic link (training writes only real files)" in status.stdout, status.stdout
    before = {path.name: path.read_bytes() for path in outside.iterdir()}
    run_snakemake("-c2", "--configfile", str(run["config"]), cwd=run["workdir"])
    assert (cell / "snapshots").is_dir() and not (cell / "snapshots").is_symlink()
    assert {path.name: path.read_bytes() for path in outside.iterdir()} == before
    assert "damaged" not in cli("status", DEFAULT, run["config"], cwd=run["workdir"]).stdout


def test_a_damaged_cell_in_a_read_only_results_tree_is_one_line(run):
    if shutil.which("unshare") is None or subprocess.run(["unshare", "-rm", "true"], capture_output=True).returncode != 0:
        pytest.skip("unshare cannot create a user and mount namespace here")
    cell, results = run["cell"], run["results"]
    saved = (cell / "metrics.json").read_bytes()
    (cell / "metrics.json").write_bytes(saved[:40])
    try:
        script = 'mount --bind "$1" "$1" && mount -o remount,ro,bind "$1" && shift && exec "$@"'
        command = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory", str(run["workdir"]),
                   "-c1", "--configfile", str(run["config"])]
        result = subprocess.run(["unshare", "-rm", "sh", "-c", script, "sh", str(results), *command], capture_output=True,
                                text=True, timeout=300, cwd=run["workdir"])
        assert result.returncode != 0
        assert "Traceback" not in result.stderr, result.stderr[-3000:]
        assert f"bench_powerprop: cannot remove {cell}/" in result.stderr and "Read-only file system" in result.stderr
    finally:
        (cell / "metrics.json").write_bytes(saved)
