"""The report's HTML: one self-contained page, inline CSS, images as ``data:`` URIs, no script.

Blocks (:class:`Figure`, :class:`Table`, :class:`Text`, :class:`Code`, :class:`Note`,
:class:`About`, :class:`Group`) make up :class:`Section` objects; :func:`render_page` turns them into a page.
Nothing here loads anything from outside the file: the page opens offline, from an email
attachment or a course website alike. Links to the figure and table files written next to the
report are plain relative ``<a href>`` links, and papers are ``https`` links: neither loads
anything until clicked.
"""

from __future__ import annotations

import dataclasses
import html
import re
from collections.abc import Sequence

STATUS_LABELS = {"ok": "", "skipped": "skipped", "failed": "failed", "partial": "partly failed"}


@dataclasses.dataclass
class Figure:
    caption: str
    uri: str  # data:image/png;base64,...
    files: tuple[str, ...] = ()  # paths relative to the report
    alt: str = ""


@dataclasses.dataclass
class Table:
    caption: str
    html: str  # from DataFrame.to_html (escaped there)
    file: str | None = None


@dataclasses.dataclass
class Text:
    text: str


@dataclasses.dataclass
class Code:
    text: str


@dataclasses.dataclass
class Details:
    """Collapsed text (``<details>``): long records such as the full settings JSON."""

    summary: str
    text: str


@dataclasses.dataclass
class Note:
    text: str
    kind: str = "warning"  # "warning" | "info"


@dataclasses.dataclass
class About:
    """A method or metric explained in plain language, with its paper.

    The paper link is a plain ``<a href>`` to an ``https`` address (arXiv, DOI): it loads
    nothing until clicked, so the page still opens offline.
    """

    title: str
    text: str
    reference: str = ""
    url: str | None = None
    kind: str = ""  # e.g. the method's family


@dataclasses.dataclass
class Group:
    """A titled sub-part of a section (one image, one layer, ...)."""

    title: str
    blocks: list = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class Section:
    id: str
    title: str
    intro: str = ""
    status: str = "ok"  # "ok" | "skipped" | "failed" | "partial"
    reason: str = ""
    blocks: list = dataclasses.field(default_factory=list)


CSS = """
:root { --fg:#1d232a; --muted:#5b6570; --line:#d9dee3; --bg:#ffffff; --soft:#f5f7f9;
        --accent:#0072B2; --warn:#D55E00; --info:#0072B2; }
* { box-sizing: border-box; }
body { margin:0; color:var(--fg); background:var(--bg);
       font: 15px/1.5 Georgia, "DejaVu Serif", "Times New Roman", serif; }
header { padding: 28px 40px 16px; border-bottom: 1px solid var(--line); }
header h1 { margin: 0 0 4px; font-size: 26px; }
header p { margin: 2px 0; color: var(--muted); }
.layout { display: flex; align-items: flex-start; }
nav { position: sticky; top: 0; min-width: 230px; max-width: 260px; padding: 20px 18px 20px 40px;
      font: 14px/1.6 system-ui, "DejaVu Sans", sans-serif; }
nav ol { padding-left: 18px; margin: 0; }
nav a { color: var(--accent); text-decoration: none; }
nav .badge { margin-left: 4px; }
main { flex: 1; min-width: 0; padding: 8px 40px 60px 24px; max-width: 1200px; }
section { border-top: 1px solid var(--line); padding-top: 8px; margin-top: 22px; }
section:first-child { border-top: none; margin-top: 0; }
h2 { font-size: 21px; margin: 10px 0 6px; }
h3 { font-size: 17px; margin: 18px 0 6px; }
.intro { color: var(--muted); margin-top: 0; }
figure { margin: 12px 0 18px; }
figure img { max-width: 100%; height: auto; border: 1px solid var(--line); background: #fff; }
figcaption { color: var(--muted); font-size: 13.5px; margin-top: 4px; }
.files { font: 12.5px/1.4 system-ui, "DejaVu Sans", sans-serif; color: var(--muted); }
.files a { color: var(--accent); margin-right: 8px; }
table.dataframe { border-collapse: collapse; margin: 8px 0;
      font: 13px/1.35 system-ui, "DejaVu Sans", sans-serif; }
table.dataframe th, table.dataframe td { border-bottom: 1px solid var(--line); padding: 3px 9px;
      text-align: right; }
table.dataframe th { background: var(--soft); }
table.dataframe td:first-child, table.dataframe th:first-child { text-align: left; }
.table-wrap { overflow-x: auto; max-width: 100%; }
details { margin: 8px 0; } summary { cursor: pointer; color: var(--accent); }
pre { background: var(--soft); border: 1px solid var(--line); padding: 10px 12px; overflow-x: auto;
      font: 12.5px/1.45 "DejaVu Sans Mono", Menlo, Consolas, monospace; }
.note { border-left: 4px solid var(--warn); background: #fdf1ea; padding: 6px 12px; margin: 8px 0; }
.note.info { border-left-color: var(--info); background: #eaf3fa; }
.badge { display: inline-block; font: 11.5px/1.6 system-ui, "DejaVu Sans", sans-serif;
         padding: 0 7px; border-radius: 9px; color: #fff; background: var(--muted);
         vertical-align: middle; }
.badge.failed, .badge.partial { background: var(--warn); }
.about { margin: 6px 0 12px; } .about p { margin: 2px 0; }
.about .kind, .about .ref { color: var(--muted); } .about .ref { font-size: 13px; }
.about a { color: var(--accent); overflow-wrap: anywhere; }
footer { color: var(--muted); font-size: 13px; padding: 14px 40px 30px;
         border-top: 1px solid var(--line); }
@media print { nav { display: none; } main { padding: 0 12px; } section { break-inside: avoid-page; } }
@media (max-width: 900px) { .layout { display: block; } nav { position: static; max-width: none; } }
"""

_SAFE_HREF = re.compile(r"^[A-Za-z0-9_./-]+$")
_PAPER_HREF = re.compile(r"^https://[A-Za-z0-9_./:#?=&%~+-]+$")


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _badge(status: str) -> str:
    label = STATUS_LABELS.get(status, status)
    return f'<span class="badge {_e(status)}">{_e(label)}</span>' if label else ""


def _files(files: Sequence[str]) -> str:
    links = []
    for path in files:
        name = path.rsplit(".", 1)[-1].upper() if "." in path else path
        if _SAFE_HREF.match(path):  # relative links only; nothing loads until clicked
            links.append(f'<a href="{_e(path)}">{_e(name)}</a>')
        else:
            links.append(f"<span>{_e(path)}</span>")
    return f'<div class="files">Files: {" ".join(links)}</div>' if links else ""


def render_block(block: object) -> str:
    if isinstance(block, Figure):
        alt = block.alt or block.caption
        return (
            f'<figure><img src="{block.uri}" alt="{_e(alt)}">'
            f"<figcaption>{_e(block.caption)}</figcaption>{_files(block.files)}</figure>"
        )
    if isinstance(block, Table):
        caption = f"<p><strong>{_e(block.caption)}</strong></p>" if block.caption else ""
        files = _files([block.file]) if block.file else ""
        return f'{caption}<div class="table-wrap">{block.html}</div>{files}'
    if isinstance(block, Text):
        return f"<p>{_e(block.text)}</p>"
    if isinstance(block, Code):
        return f"<pre>{_e(block.text)}</pre>"
    if isinstance(block, Details):
        return (
            f"<details><summary>{_e(block.summary)}</summary><pre>{_e(block.text)}</pre></details>"
        )
    if isinstance(block, Note):
        kind = "info" if block.kind == "info" else "warning"
        return f'<div class="note {kind}">{_e(block.text)}</div>'
    if isinstance(block, About):
        kind = f' <span class="kind">({_e(block.kind)})</span>' if block.kind else ""
        link = ""
        if block.url and _PAPER_HREF.match(block.url):
            link = (
                f' <a class="paper" href="{_e(block.url)}" rel="noopener noreferrer">'
                f"{_e(block.url)}</a>"
            )
        ref = f'<p class="ref">{_e(block.reference)}{link}</p>' if block.reference else ""
        return (
            f'<div class="about"><p><strong>{_e(block.title)}</strong>{kind}: '
            f"{_e(block.text)}</p>{ref}</div>"
        )
    if isinstance(block, Group):
        inner = "".join(render_block(b) for b in block.blocks)
        return f'<div class="group"><h3>{_e(block.title)}</h3>{inner}</div>'
    raise TypeError(f"cannot render a {type(block).__name__} block")


def render_section(section: Section) -> str:
    parts = [
        f'<section id="{_e(section.id)}" data-status="{_e(section.status)}">',
        f"<h2>{_e(section.title)} {_badge(section.status)}</h2>",
    ]
    if section.intro:
        parts.append(f'<p class="intro">{_e(section.intro)}</p>')
    if section.reason:
        kind = "info" if section.status == "skipped" else "warning"
        label = "Skipped" if section.status == "skipped" else "Failed"
        parts.append(f'<div class="note {kind}">{label}: {_e(section.reason)}</div>')
    parts.extend(render_block(b) for b in section.blocks)
    parts.append("</section>")
    return "\n".join(parts)


def render_page(
    title: str,
    sections: Sequence[Section],
    *,
    subtitle: Sequence[str] = (),
    footer: str = "",
) -> str:
    """The complete HTML document."""
    toc = "".join(
        f'<li><a href="#{_e(s.id)}">{_e(s.title)}</a>{_badge(s.status)}</li>' for s in sections
    )
    lines = "".join(f"<p>{_e(line)}</p>" for line in subtitle)
    body = "\n".join(render_section(s) for s in sections)
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        # forbid any network load: everything the page needs is inside it
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "img-src data:; style-src 'unsafe-inline'\">\n"
        '<meta name="generator" content="vizkit">\n'
        f"<title>{_e(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
        f"<header><h1>{_e(title)}</h1>{lines}</header>\n"
        f'<div class="layout"><nav aria-label="Contents"><strong>Contents</strong><ol>{toc}</ol>'
        f"</nav>\n<main>\n{body}\n</main></div>\n"
        f"<footer>{_e(footer)}</footer>\n</body>\n</html>\n"
    )


__all__ = [
    "About",
    "Code",
    "Details",
    "Figure",
    "Group",
    "Note",
    "Section",
    "Table",
    "Text",
    "render_page",
]
