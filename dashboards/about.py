"""What each method and metric does, in plain language, next to the pickers that choose them.

The words are the library's own: a method's ``description`` and ``reference`` from the registry
(:class:`vizkit.registry.MethodInfo`) and a metric's :func:`vizkit.metrics.metric_info`. The
reference becomes a link: arXiv identifiers to their abstract page, web addresses as they are,
and other papers to a scholar search for their title. Links open only when clicked: the
dashboard itself requests nothing from the network.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Sequence
from typing import Any

import streamlit as st

ARXIV = re.compile(r"arXiv:\s*(\d{4}\.\d{4,5})(v\d+)?", re.IGNORECASE)
URL = re.compile(r"https?://[^\s;,)]+")
SCHOLAR = "https://scholar.google.com/scholar?q="


def reference_links(reference: str) -> list[tuple[str, str]]:
    """``(label, url)`` for each paper a reference string names (several are split at ``;``).

    >>> reference_links("Simonyan et al. (2014), Deep Inside ..., arXiv:1312.6034")
    [('arXiv:1312.6034', 'https://arxiv.org/abs/1312.6034')]
    """
    links: list[tuple[str, str]] = []
    for part in (p.strip() for p in reference.split(";")):
        if not part or part.lower() == "vizkit":
            continue
        found = ARXIV.search(part)
        url = URL.search(part)
        if found:
            links.append((f"arXiv:{found.group(1)}", f"https://arxiv.org/abs/{found.group(1)}"))
        elif url:
            links.append((urllib.parse.urlsplit(url.group(0)).netloc, url.group(0)))
        else:  # "Authors (2021), Title, Venue": search for the title
            title = part.split("), ", 1)[-1].rsplit(", ", 1)[0]
            links.append(("search the paper", SCHOLAR + urllib.parse.quote_plus(title)))
    return links


def reference_markdown(reference: str) -> str:
    """The reference followed by its links, as Markdown."""
    links = reference_links(reference)
    text = reference.replace("[", "(").replace("]", ")")
    if not links:
        return text
    return f"{text} ({', '.join(f'[{label}]({url})' for label, url in links)})"


def method_text(info: Any) -> str:
    """One method's paragraph: what it is (its family), what it shows, the paper."""
    lines = [f"**{info.label}** · {info.family_label}", "", info.description or ""]
    if info.reference:
        lines += ["", f"Paper: {reference_markdown(info.reference)}"]
    return "\n".join(lines)


def metric_text(info: Any) -> str:
    better = {"lower": " (lower is better)", "higher": " (higher is better)"}.get(info.better, "")
    lines = [f"**{info.label}**{better}", "", info.description]
    if info.reference and info.reference != "vizkit":
        lines += ["", f"Paper: {reference_markdown(info.reference)}"]
    return "\n".join(lines)


def methods(infos: Sequence[Any], *, where: Any = None, expanded: bool = False) -> None:
    """An expander explaining each chosen method (registry facts)."""
    if not infos:
        return
    where = where or st
    title = infos[0].label if len(infos) == 1 else f"{len(infos)} methods"
    with where.expander(f"About {title}: what it shows, how to read it", expanded=expanded):
        for i, info in enumerate(infos):
            if i:
                st.divider()
            st.markdown(method_text(info))


def metrics(names: Sequence[str], *, where: Any = None, expanded: bool = False) -> None:
    """An expander explaining each chosen metric (:func:`vizkit.metrics.metric_info`)."""
    from vizkit.metrics.info import metric_info

    if not names:
        return
    where = where or st
    with where.expander("About these metrics: what they measure", expanded=expanded):
        for i, name in enumerate(names):
            if i:
                st.divider()
            st.markdown(metric_text(metric_info(name)))
