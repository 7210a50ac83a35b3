"""``python -m generator pdf``: the lab report as one PDF, ``report.pdf``.

The report page's Markdown (the build's ``report/index.md``) is turned into HTML by
Python-Markdown with the site's extensions, put behind a title page, and laid out for print by
WeasyPrint: a page break before each part, figures numbered under their captions, tables at
the page's width, links as their text (a web address beside it). Why WeasyPrint: it is a pip
package (the ``pdf`` extra), runs offline (it is let read local files only), and lays
out print CSS (page breaks, counters, page numbers) itself; Chromium's print to PDF needs a
browser installed beside Python and a server or file URLs, and a print-site plugin would
print the whole site with Material's screen layout.
"""

from __future__ import annotations

import datetime
import html
import logging
import re
from pathlib import Path

from generator.errors import GeneratorError

EXTENSIONS = ["admonition", "attr_list", "md_in_html", "tables", "pymdownx.superfences", "pymdownx.blocks.caption"]
FRONT_MATTER = re.compile(r"\A---\n.*?\n---\n", re.S)
LINK = re.compile(r"<a\b[^>]*?href=\"([^\"]*)\"[^>]*>(.*?)</a>", re.S)

STYLE = """
@page { size: A4; margin: 2cm 1.8cm; @bottom-center { content: counter(page); font-size: 9pt; color: #555; } }
@page :first { @bottom-center { content: none; } }
body { font-family: "DejaVu Sans", sans-serif; font-size: 10pt; line-height: 1.4; counter-reset: figure; }
.title-page { break-after: page; text-align: center; padding-top: 7cm; }
.title-page h1 { font-size: 24pt; margin-bottom: 1.5cm; }
.title-page p { font-size: 13pt; margin: .3cm 0; }
h1 { font-size: 18pt; }
h2 { break-before: page; font-size: 15pt; }
h3 { font-size: 12pt; break-after: avoid; }
figure { margin: .4cm 0; break-inside: avoid; counter-increment: figure; }
figure img, p img { max-width: 100%; height: auto; }
img.pixelated { image-rendering: pixelated; }
figcaption { font-size: 9pt; color: #333; }
figcaption p { display: inline; }
figcaption::before { content: "Figure " counter(figure) ". "; font-weight: bold; }
table { width: 100%; table-layout: fixed; border-collapse: collapse; font-size: 8pt; margin: .3cm 0; }
th, td { border: .5pt solid #999; padding: 2pt 3pt; overflow-wrap: anywhere; vertical-align: top; }
td img { max-width: 100%; height: auto; }
code { font-family: "DejaVu Sans Mono", monospace; font-size: 90%; }
.admonition { border-left: 3pt solid #448aff; background: #eef3ff; padding: .2cm .4cm; margin: .3cm 0;
              break-inside: avoid; }
.admonition-title { font-weight: bold; margin: 0 0 .1cm; }
.url { color: #555; font-size: 85%; }
"""


def write_pdf(report_page: Path, output: Path, title: str, author: str, model: str) -> Path:
    """Lay out the built report page ``report_page`` (Markdown; its figures beside it) as ``output``."""
    weasyprint = engine()
    logging.getLogger("weasyprint").setLevel(logging.ERROR)  # its progress steps are not the build's lines
    page = report_html(report_page.read_text(encoding="utf-8"), title, author, model, datetime.date.today())
    fetcher = weasyprint.urls.URLFetcher(allowed_protocols={"file", "data"}, fail_on_errors=True)  # offline
    document = weasyprint.HTML(string=page, base_url=report_page.parent.as_uri() + "/", url_fetcher=fetcher)
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_name(f".{output.name}.partial")
    document.write_pdf(partial)
    partial.replace(output)  # a reader never finds half a PDF
    return output


def report_html(markdown_text: str, title: str, author: str, model: str, date: datetime.date) -> str:
    """The report page's Markdown as one HTML document for print, behind a title page."""
    import markdown

    body = markdown.markdown(FRONT_MATTER.sub("", markdown_text), extensions=EXTENSIONS)
    lines = [f"<p>{html.escape(text)}</p>" for text in (author and f"By {author}", f"Model: {model}",
                                                        date.isoformat()) if text]
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{STYLE}</style></head><body><section class='title-page'><h1>{html.escape(title)}</h1>"
            f"{''.join(lines)}</section>{links_as_text(body)}</body></html>")


def links_as_text(body: str) -> str:
    """Every link replaced by its text; a web address stays beside its text (the site's own links have no
    meaning on paper)."""
    def text(m: re.Match) -> str:
        href, label = m.group(1), m.group(2)
        if href.startswith(("http://", "https://")) and html.unescape(href) != html.unescape(label):
            return f"{label} <span class='url'>({href})</span>"
        return label

    return LINK.sub(text, body)


def engine():
    """WeasyPrint, or one line saying how to install it."""
    try:
        import weasyprint
    except ImportError:
        raise GeneratorError("the PDF needs WeasyPrint, an optional extra: pip install -e \".[pdf]\"") from None
    except OSError as e:  # the package is there, its system libraries (Pango) are not
        raise GeneratorError(f"WeasyPrint cannot load Pango ({e}); install it: apt-get install libpango-1.0-0 "
                             "libpangoft2-1.0-0") from None
    return weasyprint

