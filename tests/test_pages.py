"""Tables as HTML pages for the report: a ``|`` in a header or cell (``|θ| < ε``) stays inside its cell."""

import re

import pandas as pd

from bench_powerprop.reporting.adaptive import trace_markdown
from bench_powerprop.reporting.pages import html_page, markdown_table


def plain(page: str) -> str:
    """The page with the cells' attributes (text alignment) dropped."""
    return re.sub(r"<(t[hd])[^>]*>", r"<\1>", page)


def cells_per_row(page: str) -> list[int]:
    return [len(re.findall(r"<t[hd]>", row)) for row in re.findall(r"<tr>(.*?)</tr>", page, flags=re.S)]


def test_pipes_in_headers_and_cells_do_not_split_them():
    frame = pd.DataFrame({"|θ| < ε (%)": ["1.0", "2.0"], "note": ["a |b| c", "d"]})
    page = plain(html_page(markdown_table(frame), "t"))
    assert cells_per_row(page) == [2, 2, 2]
    assert "<th>|θ| &lt; ε (%)</th>" in page and "<td>a |b| c</td>" in page


def test_the_adaptive_alpha_trace_table_renders_one_cell_per_column():
    trace = pd.DataFrame({
        "method": "adaptive_alpha", "variant": ["default"] * 2 + ["fixed"] * 2, "alpha": 1.5, "seed": 0,
        "step": [0, 10] * 2, "alpha_now": [1.5, 1.75, 1.5, 1.5], "next_alpha": [1.75, 2.125, 1.5, 1.5],
        "fraction_below_epsilon": [0.1, 0.12, 0.1, 0.09], "diverged": False,
    })
    page = plain(html_page(trace_markdown(trace, "0.01"), "trace"))
    assert cells_per_row(page) == [5, 5, 5]
    assert "|θ| &lt; 0.01 at end (%)" in page
    assert re.search(r"<td>adaptive α from 1.5</td>\s*<td>2.12 \(2.12–2.12\)</td>\s*<td>10.00</td>\s*<td>12.00</td>", page)
