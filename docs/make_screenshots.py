"""Retake the README's dashboard screenshots (``docs/screenshots/``) in headless Chromium.

Run from the repository root (the sample models built, Debian's ``/usr/bin/chromium`` or
``VIZKIT_CHROMIUM``, Playwright installed)::

    .venv/bin/python docs/make_screenshots.py              # every page
    .venv/bin/python docs/make_screenshots.py --only Dataset,Units

The dashboard is started on a free port with its default model (``sample:imagenet_lite0``) and a
data folder holding a small scan for the Dataset page: 400 generated shape images with masks
(``python -m sample_models shapes-folder``) scanned with the ``shapes_vgg`` sample
(``vizkit scan``; kept in ``--data``, reused when it is there). Each page is opened like a person
would, its long computations started with their buttons (activation maximization at full steps:
``VIZKIT_MAX_STEPS`` is removed), and the picture is taken once the script run has finished, no
spinner, skeleton or progress bar is left and every image in the main area has loaded (a change
inside a fragment, which ends no script run, waits for the figures' render markers
``#vk-figure-<name>`` instead). Full-page pictures at 1400 px wide (at most ``--max-height``),
saved as 256-colour PNGs; a page showing an error or exception box makes the script fail.
"""

from __future__ import annotations

import argparse
import io
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.dashboards.test_browser import (  # noqa: E402  (after the path set-up)
    act,
    browser_page,
    open_page,
    problems,
    serve,
)

OUT = ROOT / "docs" / "screenshots"
WIDTH = 1400
SCAN_IMAGES = 400
BUTTONS = ("Synthesize the activation-maximization image", "Run")
FIGURES_READY = (
    "() => [...document.querySelectorAll('[data-testid=stMain] [data-testid=stImage] img')]"
    ".every(i => i.complete && i.naturalWidth > 0)"
    " && !document.querySelector('[data-testid=stSpinner], [data-testid=stProgress],"
    " [data-testid=stSkeleton]')"
)


# --------------------------------------------------------------------------------------------
# The Dataset page's scan
# --------------------------------------------------------------------------------------------
def make_scan(data: Path) -> None:
    """A shape-image folder with masks and its scan by the shapes sample (kept and reused: a
    finished scan run again computes nothing, an interrupted one continues)."""
    folder, out = data / "shapes", data / "scans" / "shapes_vgg"
    python = sys.executable
    if len(list(folder.glob("images/*/*.png"))) < SCAN_IMAGES:
        subprocess.run(
            [python, "-m", "sample_models", "shapes-folder", str(folder)]
            + ["--count", str(SCAN_IMAGES)],
            cwd=ROOT,
            check=True,
        )
    subprocess.run(
        [python, "-m", "vizkit", "scan", "--model", "sample:shapes_vgg"]
        + ["--images", str(folder / "images"), "--masks", str(folder / "masks")]
        + ["--methods", "gradcam,saliency", "--metrics", "pointing_game,relevance_mass,deletion"]
        + ["--out", str(out), "-q"],
        cwd=ROOT,
        check=True,
    )


# --------------------------------------------------------------------------------------------
# Pages
# --------------------------------------------------------------------------------------------
def main_area(page: Any) -> Any:
    return page.locator('[data-testid="stMain"]')


def add_options(page: Any, label: str, options: list[str], clear: bool = False) -> None:
    """Add ``options`` (typed to filter long lists) to the main area's multiselect ``label``;
    ``clear`` removes its preselected options first."""
    box = main_area(page).locator('[data-testid="stMultiSelect"]', has_text=label).first
    if clear:
        clear_all = box.locator('[aria-label="Clear all"], [title="Clear all"]')
        if clear_all.count():
            act(page, clear_all.first.click)
        while box.locator('[role="button"][aria-label^="Remove"]').count():
            act(page, box.locator('[role="button"][aria-label^="Remove"]').last.click)
    for option in options:
        box.locator("input").click()
        page.keyboard.type(option.split(": ", 1)[-1])
        act(page, page.get_by_role("option", name=option, exact=True).first.click)
    page.keyboard.press("Escape")


def select(page: Any, label: str, text: str) -> None:
    """Choose the first option containing ``text`` in the main area's selectbox ``label``."""
    box = main_area(page).locator('[data-testid="stSelectbox"]', has_text=label).first
    box.locator("input").click()
    page.keyboard.type(text)
    act(page, page.get_by_role("option").filter(has_text=text).first.click)


def renders(page: Any) -> int:
    """How many figures the page has drawn (the figures' render markers, summed)."""
    return int(
        page.evaluate(
            "() => [...document.querySelectorAll('.vk-figure')]"
            ".reduce((n, e) => n + (+e.dataset.render || 0), 0)"
        )
    )


def press_buttons(page: Any) -> None:
    """Start the page's long computations (activation maximization, occlusion runs)."""
    for label in BUTTONS:
        button = main_area(page).get_by_role("button", name=re.compile(rf"^\W*{re.escape(label)}$"))
        if button.count():
            act(page, button.first.click, timeout=1200)


def feature_maps(page: Any) -> None:
    """A layer a third of the way in (the default is the model's first layer, its input
    rescaling, whose three channels also cap the top-k slider at 3), eight channels."""
    select(page, "Layer", "block2_add")
    thumb = main_area(page).locator('[data-testid="stSlider"]', has_text="Channels shown")
    before = renders(page)
    thumb.first.get_by_role("slider").first.focus()
    for _ in range(5):  # the slider lives in a fragment: no full script run to wait for
        page.keyboard.press("ArrowRight")
        time.sleep(0.2)
    deadline = time.monotonic() + 300
    while renders(page) <= before and time.monotonic() < deadline:
        time.sleep(0.2)


def units(page: Any) -> None:
    """A ReLU two thirds of the way in (the default, the last 1x1 convolution, has receptive
    fields the size of the whole image)."""
    select(page, "Layer", "block9_expand_relu")
    press_buttons(page)


def attribution(page: Any) -> None:
    add_options(page, "Methods", ["Grad-CAM++", "Integrated gradients"])


def activation_max(page: Any) -> None:
    add_options(page, "Classes", ["1: goldfish", "281: tabby", "967: espresso"], clear=True)
    press_buttons(page)


PAGES: dict[str, Callable[[Any], None]] = {
    "Model": lambda page: None,
    "Filters": lambda page: None,
    "Feature maps": feature_maps,
    "Units": units,
    "Attribution": attribution,
    "Occlusion": press_buttons,
    "Activation maximization": activation_max,
    "Evaluation": press_buttons,
    "Dataset": lambda page: None,  # the first scan, its first image
}


def wait_ready(page: Any, timeout: float = 600.0) -> None:
    """Until no spinner or progress bar is left and every image in the main area has loaded."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if page.evaluate(FIGURES_READY):
            time.sleep(0.5)  # let the browser paint
            if page.evaluate(FIGURES_READY):
                return
        time.sleep(0.2)
    raise TimeoutError(f"the page was not ready within {timeout:.0f} s")


def shoot(page: Any, path: Path, max_height: int) -> None:
    """A full-page picture (Streamlit scrolls inside its main area: grow the viewport to fit),
    saved as an optimized PNG."""
    from PIL import Image

    height = page.evaluate(
        "() => Math.max(...[...document.querySelectorAll("
        "'[data-testid=stMain], [data-testid=stSidebarContent]')].map(e => e.scrollHeight), 0)"
    )
    page.set_viewport_size({"width": WIDTH, "height": int(min(max(height, 900), max_height))})
    page.mouse.move(0, 0)  # no hover tooltips in the picture
    wait_ready(page)
    picture = Image.open(io.BytesIO(page.screenshot())).convert("RGB")
    page.set_viewport_size({"width": WIDTH, "height": 1000})
    # 256 colours, dithered (the UI's flat colours are in the palette, photos stay smooth):
    # a third of the size
    picture.quantize(256, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="sample:imagenet_lite0")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--data", type=Path, default=Path("/tmp/vizkit-screenshots-data"))
    parser.add_argument("--only", default="", help="comma-separated page titles")
    parser.add_argument("--max-height", type=int, default=3000)
    args = parser.parse_args(argv)
    only = [p.strip() for p in args.only.split(",") if p.strip()]
    args.out.mkdir(parents=True, exist_ok=True)
    if not only or "Dataset" in only:
        make_scan(args.data)
    os.environ["VIZKIT_DASHBOARD_DATA"] = str(args.data)
    os.environ.pop("VIZKIT_MAX_STEPS", None)  # the cap is for tests only
    log = args.out / "streamlit.log"
    found: dict[str, list[str]] = {}
    with serve(args.model, log, timeout=300, max_steps=None) as url, browser_page() as page:
        act(page, lambda: page.goto(url, wait_until="domcontentloaded"), timeout=300)
        for number, (title, prepare) in enumerate(PAGES.items(), start=1):
            if only and title not in only:
                continue
            started = time.monotonic()
            open_page(page, title)
            prepare(page)
            slug = re.sub(r"\W+", "_", title.lower()).strip("_")
            path = args.out / f"{number:02d}_{slug}.png"
            shoot(page, path, args.max_height)
            found[title] = problems(page)
            print(
                f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}: "
                f"{path.stat().st_size / 1024:.0f} KB, {time.monotonic() - started:.0f} s"
                + (f", problems: {found[title]}" if found[title] else ""),
                flush=True,
            )
    log.unlink(missing_ok=True)
    bad = {k: v for k, v in found.items() if v}
    print("problems:", bad or "none")
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
