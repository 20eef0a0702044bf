"""Markdown tables as self-contained HTML pages, the form Snakemake's report displays.

Snakemake's HTML report shows images, PDFs and HTML pages; a CSV or Markdown file is only offered
as a download. Every table meant for the report is therefore also written as one HTML page,
converted from the same Markdown the ``.md`` file holds, so the two never disagree.

The pages show text the harness did not write (config values, overrides, paths, host names), so no
text becomes markup: raw HTML in the Markdown is escaped, a link or image may only point to
http(s), mailto, a relative path or an embedded PNG/JPEG, and every page forbids scripts in its
own Content-Security-Policy (it holds even where Snakemake's report embeds the page in an iframe
without a ``sandbox`` attribute, and when the page is opened on its own).
"""

from __future__ import annotations

import re
from html import escape
from pathlib import Path

import markdown
import pandas as pd
from markdown.treeprocessors import Treeprocessor

from bench_powerprop.io import write_csv_atomic, write_text_atomic

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; color: #1f2933; margin: 1.25rem; line-height: 1.45; }
h1 { font-size: 1.25rem; } h2 { font-size: 1.1rem; margin-top: 1.5rem; }
p, li { max-width: 70rem; font-size: 0.9rem; }
table { border-collapse: collapse; font-size: 0.82rem; margin: 0.75rem 0; }
th, td { border: 1px solid #cbd2d9; padding: 0.3rem 0.55rem; vertical-align: top; }
th { background: #f0f4f8; text-align: left; }
tr:nth-child(even) td { background: #fafbfc; }
code { font-size: 0.8rem; }
"""


def escape_pipes(value):
    return value.replace("|", "\\|") if isinstance(value, str) else value


def markdown_table(frame: pd.DataFrame) -> str:
    """``frame.to_markdown`` with ``|`` inside cells and headers escaped, so ``|θ| < ε`` does not split its row;
    text stays as written (no reparsing of "10.00" as the number 10)."""
    return frame.map(escape_pipes).rename(columns=escape_pipes).to_markdown(index=False, disable_numparse=True)


#: No script, no network: inline styles and embedded images only (the pages are self-contained).
CONTENT_SECURITY_POLICY = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'"
SAFE_URL = re.compile(r"(https?:|mailto:|#|data:image/(png|jpeg);base64,|(?![a-z][a-z0-9+.-]*:)).*", re.IGNORECASE | re.DOTALL)


class SafeUrls(Treeprocessor):
    """Drop a link's or image's URL whose scheme could run code (``javascript:``, ``data:text/html``, ...)."""

    def run(self, root):
        for element in root.iter():
            for attribute in ("href", "src"):
                value = element.get(attribute)
                # browsers drop whitespace and control characters inside a URL's scheme ("java\tscript:")
                if value is not None and not SAFE_URL.fullmatch(re.sub(r"[\x00-\x20\x7f]", "", value)):
                    del element.attrib[attribute]


def to_html(markdown_text: str) -> str:
    """Markdown to HTML, raw HTML in the text escaped (shown as typed) and unsafe URLs dropped."""
    converter = markdown.Markdown(extensions=["tables"], output_format="html")
    converter.preprocessors.deregister("html_block")
    converter.inlinePatterns.deregister("html")
    converter.treeprocessors.register(SafeUrls(converter), "safe_urls", 0)
    return converter.convert(markdown_text)


def html_fragment(markdown_text: str, css_class: str) -> str:
    """``markdown_text`` as HTML inside ``<div class=css_class>``, for inclusion in another page."""
    return f'<div class="{css_class}">\n{to_html(markdown_text)}\n</div>\n'


def html_page(markdown_text: str, title: str, style: str = "") -> str:
    """A standalone HTML document (inline style, no external resources) rendering ``markdown_text``; ``style`` is added
    after the shared one."""
    body = to_html(markdown_text)
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{CONTENT_SECURITY_POLICY}">\n'
        f"<title>{escape(title)}</title>\n<style>{STYLE}{style}</style>\n</head>\n<body>\n{body}\n</body>\n</html>\n"
    )


def write_table_page(table: pd.DataFrame, markdown_text: str, title: str, csv: Path, markdown_path: Path, page: Path,
                     style: str = "") -> None:
    """A table three ways: CSV (for programs), Markdown and the HTML page of that Markdown (for readers)."""
    write_csv_atomic(csv, table)
    write_text_atomic(markdown_path, markdown_text)
    write_text_atomic(page, html_page(markdown_text, title, style))
