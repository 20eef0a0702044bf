"""The reproduction report for real: a tiny run of one experiment of every pipeline kind, Snakemake's HTML
report of it built as `make run` builds it, opened in headless Chromium.

Checked through the browser's DOM: the front page shows the claims table (one row per claim, the
verdicts of claims.csv, every claim judged on an experiment of the run); every figure and table page
the experiments' pipelines declare (every kind declares a table page), and the
claims and provenance pages, are reachable through the report's own menu and rendered (images
decoded at their real size, HTML pages loaded with their tables); every caption renders without a
reStructuredText error; the runtime statistics are drawn. Chromium comes from Debian
(scripts/install_chromium.sh, run here when it is missing and we are root).
"""

import json
import math
import re
import struct

import pandas as pd
import pytest

from bench_powerprop.io import read_json
from bench_powerprop.pipelines import DEPLOY_FIGURE, PIPELINES, deployable_experiment
from bench_powerprop.reporting.claim_registry import CLAIMS
from bench_powerprop.reporting.claims import DOES_NOT_REPRODUCE, HARNESS_SECTION, INCONCLUSIVE, NOT_RUN, REPRODUCES, overview
from bench_powerprop.reporting.curves import TRAINING_CURVES
from bench_powerprop.reporting.statistics import INSUFFICIENT

from chromium import Browser, chromium_or_skip

pytestmark = [pytest.mark.slow, pytest.mark.browser]

SUMMARY_FILES = {"claims.html", "claims_forest.png", "provenance.html"}
VERDICTS = {REPRODUCES, DOES_NOT_REPRODUCE, INCONCLUSIVE, INSUFFICIENT, NOT_RUN}

CLICK_MENU = """(() => {
    const link = [...document.querySelectorAll('nav a')].find(a => a.textContent.trim() === %s);
    if (link) link.click();
    return Boolean(link);
})()"""
MENU_ENTRIES = "[...document.querySelectorAll('nav div.p-3 ul a')].map(a => a.textContent.trim())"
SHOWN = """(() => {
    const element = document.querySelector('img[src^="data:image/png"], iframe[src^="data:text/html"]');
    if (!element) return null;
    return {tag: element.tagName, head: element.src.slice(0, 300),
            loaded: element.tagName !== 'IMG' || (element.complete && element.naturalWidth > 0),
            width: element.naturalWidth || 0, height: element.naturalHeight || 0};
})()"""


@pytest.fixture(scope="module")
def chromium():
    return chromium_or_skip()


@pytest.fixture(scope="module")
def workdir(report_run):
    return report_run


@pytest.fixture(scope="module")
def page(chromium, workdir):
    with Browser(chromium) as browser:
        page = browser.open((workdir / "results" / "report.html").as_uri())
        page.wait_for("document.querySelector('#app table') !== null")
        yield page


@pytest.fixture(scope="module")
def claims(workdir):
    path = workdir / "results" / "reproduction" / "claims.csv"
    table = pd.read_csv(path, keep_default_na=False)
    table.attrs["path"] = path
    return table


def expected_files(workdir) -> dict[str, set[str]]:
    """{report category: file names}: every figure and the table page each active experiment's pipeline declares,
    and its training curves.

    The tiny run has an experiment of every pipeline kind, and every kind declares a table page for the report."""
    expected = {"Reproduction summary": set(SUMMARY_FILES)}
    manifests = [read_json(path) for path in (workdir / "results").glob("*/manifest.json")]
    assert {manifest["kind"] for manifest in manifests} == set(PIPELINES)
    for manifest in manifests:
        pipeline = PIPELINES[manifest["kind"]]
        assert "page" in pipeline.tables, manifest["kind"]
        drawn = [*pipeline.figures.values(), pipeline.tables["page"], TRAINING_CURVES]
        drawn += [DEPLOY_FIGURE] if deployable_experiment(manifest) else []  # the deploy rule's (docs/structure.md)
        expected[manifest["experiment"]] = {path.rsplit("/", 1)[-1] for path in drawn}
    return expected


def png_size(path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n", path
    return struct.unpack(">II", header[16:24])


def go_home(page) -> None:
    page.evaluate("document.querySelector('nav ol li a').click()")
    page.wait_for(f"{MENU_ENTRIES}.includes('Statistics')")


def click(page, text: str) -> None:
    assert page.evaluate(CLICK_MENU % json.dumps(text)), f"no menu entry {text!r}"


def show_each_result(page) -> list[dict]:
    """Click the eye button of every result listed in the open subcategory; what the content pane showed each time."""
    shown, previous = [], None
    for index in range(page.evaluate("document.querySelectorAll('nav a[iconname=eye]').length")):
        page.evaluate(f"document.querySelectorAll('nav a[iconname=eye]')[{index}].click()")
        seen = page.wait_for(f"(() => {{ const s = {SHOWN}; return s && s.head !== {json.dumps(previous)} && s.loaded && s; }})()")
        shown.append(seen)
        previous = seen["head"]
    return shown


def filename_of(data_uri_head: str) -> str:
    return re.search(r";filename=([^;,]+)", data_uri_head).group(1)


def test_front_page_shows_every_claim_with_its_verdict(page, claims):
    rows = page.evaluate("[...document.querySelectorAll('div.claims-overview table tbody tr')]"
                         ".map(tr => [...tr.querySelectorAll('td')].map(td => td.textContent.trim()))")
    shown = overview(pd.read_csv(claims.attrs["path"]))  # one row per (claim, experiment), its combined verdict
    assert [row[0] for row in rows] == list(shown["claim"])
    assert [row[-1] for row in rows] == list(shown["verdict"])
    assert set(claims["verdict"]) <= VERDICTS
    assert {claim.key for claim in CLAIMS} == set(claims["key"])  # every claim has a row, run or not
    assert page.evaluate("document.querySelectorAll('.system-message').length") == 0


def test_every_figure_and_table_is_rendered_through_the_menu(page, workdir, claims):
    rendered: dict[str, set[str]] = {}
    for category, files in expected_files(workdir).items():
        go_home(page)
        click(page, category)
        page.wait_for(f"document.querySelector('nav ol').textContent.includes({json.dumps(category)})")
        subcategories = page.evaluate(MENU_ENTRIES)
        for subcategory in subcategories:
            click(page, subcategory)
            page.wait_for("document.querySelectorAll('nav a[iconname=eye]').length > 0")
            for seen in show_each_result(page):
                name = filename_of(seen["head"])
                rendered.setdefault(category, set()).add(name)
                if seen["tag"] == "IMG":  # decoded at the size of the figure on disk
                    assert (seen["width"], seen["height"]) == png_size(next(workdir.glob(f"results/**/{name}"))), name
                else:
                    sources = claims[claims["section"] != HARNESS_SECTION]  # the verdict table: a row per (claim, experiment)
                    check_html_page(page, seen["head"], name, len(sources.drop_duplicates(subset=["key", "experiment"])))
            click(page, category)
        assert rendered.get(category) == files, category


def check_html_page(page, head: str, name: str, n_claims: int) -> None:
    frame = page.frame_context(head[:120])
    page.wait_for("document.readyState === 'complete' && document.querySelector('table') !== null", context=frame)
    rows = page.evaluate("document.querySelector('table tbody').rows.length", context=frame)
    assert rows > 0, name
    if name == "claims.html":
        assert rows == n_claims
        text = page.evaluate("document.body.textContent", context=frame)
        assert "Welch–Satterthwaite" in text and "Seeds needed" in text  # the verdict rule is printed on the page


def test_every_caption_renders_and_statistics_are_drawn(page):
    captions = page.evaluate("Object.fromEntries(Object.entries(results).map(([path, r]) => [path, r.caption]))")
    assert captions and all(caption.strip() for caption in captions.values()), captions
    assert not [path for path, caption in captions.items() if "system-message" in caption]
    go_home(page)
    click(page, "Statistics")
    page.wait_for("document.querySelector('#runtimes svg, #runtimes canvas') !== null")


def test_every_job_of_the_run_has_a_positive_runtime(workdir):
    """The Statistics page plots end − start per job (Snakemake's metadata, one record per output, a job's start
    the earliest of its outputs' and its end the latest, as the report combines them) on a log axis."""
    jobs: dict[tuple, list[float]] = {}
    for path in (workdir / ".snakemake" / "metadata").iterdir():
        record = json.loads(path.read_text())
        times = jobs.setdefault((record["rule"], record["job_hash"]), [math.inf, -math.inf])
        times[0], times[1] = min(times[0], record["starttime"]), max(times[1], record["endtime"])
    runtimes = {job: end - start for job, (start, end) in jobs.items()}
    assert {rule for rule, _ in runtimes} >= {"manifest", "train", "claims"}
    assert not {job: runtime for job, runtime in runtimes.items() if not runtime > 0}


def test_screenshot_of_the_landing_page(page, tmp_path):
    go_home(page)
    click(page, "Workflow")
    page.wait_for("document.querySelector('div.claims-overview table') !== null")
    path = tmp_path / "report.png"
    page.screenshot(path)
    assert png_size(path) == (1600, 1000)
    assert path.stat().st_size > 20_000  # a rendered page, not a blank one
