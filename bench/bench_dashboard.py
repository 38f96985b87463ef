"""Benchmark: how fast the dashboard answers, driven in headless Chromium like a person would.

``python -m bench --only dashboard`` (or ``python -m bench.bench_dashboard --model ...``) starts
the dashboard server on a free port with the flagship sample (``sample:imagenet_lite0``), opens
the Attribution page in Chromium (Playwright, Debian's ``/usr/bin/chromium``) and times, from
the user's action until the new figure is in the page and its image has loaded:

- **cold start**: server process started -> first Grad-CAM grid shown (target < 20 s);
- **new session**: a new browser session on the warm server, page open -> first Grad-CAM
  (target < 5 s);
- **display change**: colour map, overlay/heatmap, opacity, colour scale, each to a value not
  drawn before (so the figure is really drawn, not read from the figure cache; target < 0.5 s);
- **new target class / layer**: a class or layer not computed before on the default images
  (Grad-CAM computed in the worker, then drawn; target < 1.5 s);
- **one photo**: the same target change with one 224x224 photo selected (issue 15: under 2 s).

"Done" is read from the DOM: every figure writes a hidden ``#vk-figure-<name>`` element with a
render counter (:func:`dashboards.display.figure_marker`); the bench waits for the counter to
grow and for every image in the main area to have loaded. Medians are reported, with the load
average of the machine (the timings are wall-clock and the machine may be shared) and the CPU
seconds the server and its worker processes spent per action (independent of other load: on a
quiet machine the wall time cannot be much below it, nor, for one-threaded work, much above).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

MODEL = "sample:imagenet_lite0"
GRID = "attribution_grid"  # the Attribution page's figure
TARGETS = {"display": 0.5, "target": 1.5, "session": 5.0, "cold": 20.0, "one_photo": 2.0}
LABELS = {
    "cold": "cold server start -> first Grad-CAM",
    "session": "new browser session (warm server) -> first Grad-CAM",
    "display": "display-only change (colour map, kind, opacity, scale)",
    "target": "new target class or layer (default images)",
    "one_photo": "new target class, one 224x224 photo",
}
CLASSES = ("tiger cat", "lynx", "Persian cat", "tabby", "espresso", "cup", "goldfish", "daisy")
CMAPS = ("viridis", "inferno", "magma", "turbo", "jet", "RdBu_r")


# --------------------------------------------------------------------------------------------
# The page
# --------------------------------------------------------------------------------------------
def renders(page: Any, name: str = GRID) -> int:
    return int(
        page.evaluate(
            f"() => {{ const e = document.getElementById('vk-figure-{name}'); "
            "return e ? +e.dataset.render : 0; }"
        )
    )


def figure_info(page: Any, name: str = GRID) -> dict[str, Any]:
    return page.evaluate(
        f"() => {{ const e = document.getElementById('vk-figure-{name}'); "
        "return e ? {...e.dataset} : {}; }"
    )


IMAGES_LOADED = (
    "() => [...document.querySelectorAll('[data-testid=stMain] [data-testid=stImage] img')]"
    ".every(i => i.complete && i.naturalWidth > 0)"
)
BUSY = '[data-testid="stSpinner"], [data-testid="stProgress"]'


def wait_drawn(page: Any, before: int, timeout: float = 120.0, name: str = GRID) -> float:
    """Wait until figure ``name`` was drawn again (counter above ``before``) and shown."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if renders(page, name) > before and page.evaluate(IMAGES_LOADED):
            if page.locator(BUSY).count() == 0:
                return time.monotonic()
        time.sleep(0.01)
    raise TimeoutError(f"figure {name} was not drawn within {timeout:.0f} s")


SERVER: list[int] = []  # the server's pid, for CPU accounting


def server_cpu() -> tuple[float, float]:
    """CPU seconds of the server process, and of the server with its worker processes."""
    if not SERVER:
        return 0.0, 0.0
    return tree_cpu(SERVER[0], children=False), tree_cpu(SERVER[0])


def since(cpu: tuple[float, float]) -> tuple[float, float]:
    now = server_cpu()
    return now[0] - cpu[0], now[1] - cpu[1]


def settle(limit: float = 120.0, quiet: float = 0.05, window: float = 1.0) -> float:
    """Wait until the server and its workers are idle (warm-ups done); seconds waited."""
    started = time.monotonic()
    while time.monotonic() - started < limit:
        before = server_cpu()[1]
        time.sleep(window)
        if server_cpu()[1] - before < quiet:
            break
    return time.monotonic() - started


Action = Callable[[], None] | tuple[Callable[[], None], Callable[[], None]]


def timed(page: Any, action: Action, timeout: float = 120.0) -> tuple[float, ...]:
    """Seconds from ``action`` to the grid being drawn again, and the CPU seconds the server
    (alone, and with its workers) spent meanwhile. A ``(prepare, commit)`` pair is timed from
    the commit: opening a picker and typing a name is the user's time, not the dashboard's."""
    prepare, commit = action if isinstance(action, tuple) else (None, action)
    if prepare is not None:
        prepare()
    before = renders(page)
    cpu = server_cpu()
    started = time.monotonic()
    commit()
    wall = wait_drawn(page, before, timeout) - started
    return (wall, *since(cpu), float(figure_info(page).get("cpu", "nan")))


def main_area(page: Any) -> Any:
    return page.locator('[data-testid="stMain"]')


def pick(
    page: Any, label: str, option: str, where: Any = None
) -> tuple[Callable[[], None], Callable[[], None]]:
    """Choosing ``option`` in the selectbox called ``label``: open it and type the name to
    filter (prepare), then click the option (commit)."""

    def prepare() -> None:
        area = where if where is not None else main_area(page)
        box = area.locator('[data-testid="stSelectbox"]', has_text=label).first
        box.locator("input").click()
        page.keyboard.type(option)
        page.get_by_role("option", name=option).first.wait_for()

    def commit() -> None:
        page.get_by_role("option", name=option).first.click()

    return prepare, commit


def radio(page: Any, label: str, option: str) -> Callable[[], None]:
    def action() -> None:
        group = main_area(page).locator('[data-testid="stRadio"]', has_text=label).first
        group.get_by_text(option, exact=True).click()

    return action


def slider_step(page: Any, label: str, key: str = "ArrowRight") -> Callable[[], None]:
    def action() -> None:
        box = main_area(page).locator('[data-testid="stSlider"]', has_text=label).first
        box.get_by_role("slider").first.focus()
        page.keyboard.press(key)

    return action


def option_texts(page: Any, label: str, where: Any = None) -> list[str]:
    """The option labels of a selectbox (opens and closes it)."""
    area = where if where is not None else main_area(page)
    box = area.locator('[data-testid="stSelectbox"]', has_text=label).first
    box.locator("input").click()
    texts = page.get_by_role("option").all_inner_texts()
    page.keyboard.press("Escape")
    return texts


# --------------------------------------------------------------------------------------------
# Server and browser
# --------------------------------------------------------------------------------------------
@contextlib.contextmanager
def chromium() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    from tests.dashboards.test_browser import CHROMIUM, CHROMIUM_ARGS

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@contextlib.contextmanager
def session(browser: Any, url: str) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        page = context.new_page()
        page.set_default_timeout(120_000)
        yield page
    finally:
        context.close()


def open_attribution(page: Any, url: str, timeout: float = 300.0) -> tuple[float, ...]:
    """Open the Attribution page in ``page``; seconds until the first grid is shown (and the
    server's CPU seconds meanwhile)."""
    cpu = server_cpu()
    started = time.monotonic()
    page.goto(f"{url}/attribution", wait_until="commit")
    wall = wait_drawn(page, 0, timeout) - started
    return (wall, *since(cpu), float(figure_info(page).get("cpu", "nan")))


def tree_cpu(pid: int, children: bool = True) -> float:
    """CPU seconds (user + system) used so far by process ``pid`` and (``children``) its
    descendants (Linux)."""
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        child = int(stat.parent.name)
        parents[child] = int(fields[1])
        times[child] = (int(fields[11]) + int(fields[12])) / tick
    tree, todo = {pid}, [pid] if children else []
    while todo:
        current = todo.pop()
        tree.add(current)
        todo += [c for c, parent in parents.items() if parent == current and c not in tree]
    return sum(times.get(p, 0.0) for p in tree)


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"{one:.2f} (1 min) / {five:.2f} (5 min)"


# --------------------------------------------------------------------------------------------
# The measurements
# --------------------------------------------------------------------------------------------
def display_changes(page: Any, repeats: int) -> dict[str, list[tuple[float, ...]]]:
    found: dict[str, list[tuple[float, ...]]] = {
        "cmap": [],
        "kind": [],
        "opacity": [],
        "scale": [],
    }
    kinds = ("Heatmap", "Masked", "Overlay")
    scales = ("Shared per row", "Per panel")
    for i in range(repeats):
        found["opacity"].append(timed(page, slider_step(page, "Overlay opacity")))
        found["cmap"].append(timed(page, pick(page, "Colour map", CMAPS[i % len(CMAPS)])))
        found["kind"].append(timed(page, radio(page, "Show maps as", kinds[i % len(kinds)])))
        found["scale"].append(timed(page, radio(page, "Colour scale", scales[i % len(scales)])))
    return found


def target_changes(page: Any, repeats: int) -> dict[str, list[tuple[float, ...]]]:
    found: dict[str, list[tuple[float, ...]]] = {"class": [], "layer": [], "far layer": []}
    layers = option_texts(page, "Layer")
    visited = set(layers[:1])
    for i in range(repeats):
        found["class"].append(timed(page, pick(page, "Target class", CLASSES[i % len(CLASSES)])))
        layer = layers[(i + 1) % len(layers)] if len(layers) > 1 else None
        if layer is not None:
            found["layer"].append(timed(page, pick(page, "Layer", layer)))
            visited.add(layer)
    from dashboards.work import WARM_LAYERS  # layers of the picker traced ahead

    # never shown and not among the picker's first layers (which are traced ahead): from the
    # end of the list, so the tracing is really part of the wait
    far = [layer for layer in layers[WARM_LAYERS + 1 :] if layer not in visited][-2:]
    for layer in far:  # beyond the layers traced ahead: the tracing is part of the wait
        found["far layer"].append(timed(page, pick(page, "Layer", layer)))
    return found


def one_photo(page: Any, repeats: int) -> list[tuple[float, ...]]:
    """Keep one photo in the sidebar's image picker, then change the target class."""
    sidebar = page.locator('[data-testid="stSidebar"]')
    picker = sidebar.locator('[data-testid="stMultiSelect"]').first
    while picker.locator('[role="button"][aria-label^="Remove"]').count() > 1:
        before = renders(page)
        picker.locator('[role="button"][aria-label^="Remove"]').last.click()
        wait_drawn(page, before)
    times = []
    for i in range(repeats):
        name = CLASSES[(i + 3) % len(CLASSES)]
        times.append(timed(page, pick(page, "Target class", name)))
    return times


def measure(model: str = MODEL, repeats: int = 5) -> dict[str, Any]:
    """Run every measurement once against a fresh server: ``(wall, server CPU)`` seconds per
    action."""
    from tests.dashboards.test_browser import serve

    results: dict[str, Any] = {"model": model, "load_before": load()}
    processes: list[Any] = []
    with tempfile.TemporaryDirectory() as tmp, chromium() as browser:
        log = Path(tmp) / "streamlit.log"
        started = time.monotonic()
        with serve(model, log, timeout=300.0, max_steps=None, processes=processes) as url:
            SERVER[:] = [processes[0].pid]
            with session(browser, url) as page:
                open_attribution(page, url)
                results["cold"] = [(time.monotonic() - started, *server_cpu(), float("nan"))]
                results["first_figure"] = figure_info(page)
                results["warm_up_seconds"] = settle()
            results["session"] = []
            for _ in range(repeats):
                with session(browser, url) as page:
                    results["session"].append(open_attribution(page, url))
            with session(browser, url) as page:
                open_attribution(page, url)
                settle()
                parts = display_changes(page, repeats)
                results["display_parts"] = parts
                results["display"] = [t for v in parts.values() for t in v]
                settle()
                parts = target_changes(page, repeats)
                results["target_parts"] = parts
                results["target"] = [t for k, v in parts.items() if k != "far layer" for t in v]
                results["one_photo"] = one_photo(page, repeats)
            SERVER.clear()
    results["load_after"] = load()
    return results


def table(results: dict[str, Any]) -> list[str]:
    lines = [
        f"model {results['model']}; load average before {results['load_before']}, "
        f"after {results['load_after']}",
        f"warm-ups after the first page: {results['warm_up_seconds']:.0f} s",
        "| measurement | median s | min s | max s | CPU s: server, + workers, figure | runs "
        "| target s |",
        "|---|---|---|---|---|---|---|",
    ]

    def row(label: str, values: list[tuple[float, ...]], target: float | None) -> None:
        if not values:
            return
        wall = [v[0] for v in values]
        median = statistics.median(wall)
        mark = "**" if target is not None and median > target else ""
        server = statistics.median(v[1] for v in values)
        both = statistics.median(v[2] for v in values)
        figure = statistics.median(v[3] for v in values) if len(values[0]) > 3 else float("nan")
        lines.append(
            f"| {label} | {mark}{median:.2f}{mark} | {min(wall):.2f} | {max(wall):.2f} | "
            f"{server:.2f}, {both:.2f}, {figure:.2f} | {len(values)} | "
            f"{'' if target is None else f'< {target:g}'} |"
        )

    for name in ("cold", "session", "display"):
        row(LABELS[name], results[name], TARGETS[name])
    for part, values in results["display_parts"].items():
        row(f"... {part}", values, None)
    row(LABELS["target"], results["target"], TARGETS["target"])
    for part, values in results["target_parts"].items():
        row(f"... {part}", values, None)
    row(LABELS["one_photo"], results["one_photo"], TARGETS["one_photo"])
    return lines


def run(report: Any) -> Any:
    repeats = 3 if getattr(report, "quick", False) else 5
    results = measure(os.environ.get("VIZKIT_BENCH_DASHBOARD_MODEL", MODEL), repeats)
    return report.add("dashboard latency (headless Chromium)", results, table(results))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=MODEL)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    results = measure(args.model, args.repeats)
    print("\n".join(table(results)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
