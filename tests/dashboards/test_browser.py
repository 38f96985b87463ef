"""End to end in real headless Chromium: serve the dashboard, upload a model and an image, run
Grad-CAM, check the result image appears with no error or exception box, screenshot every page,
check that the browser asked nothing of any host but the dashboard's, and that closing the page
ends the session (its uploaded model file is deleted).

Uses Debian's Chromium at ``/usr/bin/chromium`` (``.ci/run`` installs it) through Playwright; the
test skips with a clear message where no Chromium is installed. Screenshots go to
``test-artifacts/screenshots/``.

The page tour also runs on its own, e.g. to refresh the README's screenshots::

    python -m tests.dashboards.test_browser --model sample:shapes_vgg --out docs/screenshots
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "dashboards" / "app.py"
CHROMIUM = os.environ.get("VIZKIT_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = ROOT / "test-artifacts" / "screenshots"
PAGES = [
    "Model",
    "Filters",
    "Feature maps",
    "Units",
    "Attribution",
    "Occlusion",  # the perturbation page, named after the registry's perturbation methods
    "Activation maximization",
    "Evaluation",
    "Dataset",
]
PROBLEMS = '[data-testid="stException"], [data-testid="stAlertContentError"]'

pytestmark = pytest.mark.browser


# --------------------------------------------------------------------------------------------
# Server and browser
# --------------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def serve(
    model: str,
    log_path: Path,
    timeout: float = 120.0,
    max_steps: str | None = "40",
    uploads: Path | None = None,
    processes: list | None = None,
) -> Iterator[str]:
    """Run ``streamlit run dashboards/app.py`` on 127.0.0.1 and a free port; always stop it.

    The server's ``Popen`` is appended to ``processes`` when given."""
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(APP),
        "--server.port",
        str(port),
        "--server.address",
        "127.0.0.1",
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
        "--",
        "--model",
        model,
    ]
    env = dict(os.environ)
    if uploads is not None:  # where the server keeps uploaded model files
        env["VIZKIT_DASHBOARD_TMP"] = str(uploads)
    if max_steps is not None:  # caps activation-maximization steps (fast tests)
        env["VIZKIT_MAX_STEPS"] = env.get("VIZKIT_MAX_STEPS", max_steps)
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=env)
        if processes is not None:
            processes.append(process)
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + timeout
            while True:
                if process.poll() is not None:
                    raise RuntimeError(
                        f"streamlit exited with {process.returncode}: see {log_path}"
                    )
                try:
                    with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as reply:
                        if reply.status == 200:
                            break
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"streamlit did not start within {timeout:.0f} s")
                time.sleep(0.3)
            yield url
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=15)


@contextlib.contextmanager
def browser_page(requests: list[str] | None = None) -> Iterator[object]:
    """A Chromium page; every URL it requests is appended to ``requests``."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(90_000)
            if requests is not None:
                page.on("request", lambda request: requests.append(request.url))
            yield page
        finally:
            browser.close()


def foreign(requests: list[str], url: str) -> list[str]:
    """Requests to any host but the dashboard's (data: and blob: URLs stay in the browser)."""
    from urllib.parse import urlsplit

    home = urlsplit(url).netloc
    return sorted(
        {r for r in requests if urlsplit(r).scheme in ("http", "https", "ws", "wss")}
        - {r for r in requests if urlsplit(r).netloc == home}
    )


def run_number(page) -> int:
    """How many script runs have finished (app.py writes the count as its last element)."""
    return int(
        page.evaluate(
            "() => { const e = document.getElementById('vk-run'); return e ? +e.dataset.run : 0; }"
        )
    )


def act(page, action=None, timeout: float = 120.0) -> None:
    """Do ``action`` and wait until the script run it triggers has finished."""
    before = run_number(page)
    if action is not None:
        action()
    busy = '[data-testid="stSpinner"], [data-testid="stProgress"], [data-testid="stSkeleton"]'
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if run_number(page) > before and page.locator(busy).count() == 0:
            time.sleep(0.3)  # let the browser paint the last messages
            return
        time.sleep(0.1)
    raise AssertionError(f"no finished script run within {timeout:.0f} s")


def problems(page) -> list[str]:
    return page.locator(PROBLEMS).all_inner_texts()


def open_page(page, title: str) -> None:
    link = page.locator('[data-testid="stSidebarNav"]').get_by_role("link", name=title)
    act(page, link.click)
    page.locator("h1", has_text=title).first.wait_for()


def main_images(page):
    return page.locator('[data-testid="stMain"] [data-testid="stImage"] img')


def screenshot(page, path: Path, width: int = 1400, max_height: int = 5000) -> None:
    """The whole page: Streamlit scrolls inside its main area, so grow the viewport to fit."""
    height = page.evaluate(
        "() => Math.max(...[...document.querySelectorAll("
        "'[data-testid=stMain], [data-testid=stSidebarContent]')].map(e => e.scrollHeight), 0)"
    )
    page.set_viewport_size({"width": width, "height": int(min(max(height, 1000), max_height))})
    page.mouse.move(0, 0)  # no hover tooltips in the picture
    time.sleep(0.5)
    page.screenshot(path=str(path))
    page.set_viewport_size({"width": width, "height": 1000})


def choose(page, label: str, options: list[str]) -> None:
    """Add options to the main area's multiselect called ``label``."""
    box = page.locator('[data-testid="stMain"] [data-testid="stMultiSelect"]', has_text=label)
    for option in options:
        box.first.locator("input").click()
        act(page, lambda option=option: page.get_by_role("option", name=option).first.click())
    page.keyboard.press("Escape")


def tour(
    page, out_dir: Path, *, run_long: bool = True, methods: list[str] = ()
) -> dict[str, list[str]]:
    """Visit every page (pressing the long-work buttons), screenshot it, collect problems.

    ``methods`` (labels such as "Integrated gradients") are added on the Attribution page.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    found = {}
    for i, title in enumerate(PAGES, start=1):
        open_page(page, title)
        if title == "Attribution" and methods:
            choose(page, "Methods", list(methods))
        if run_long:
            for label in ("Synthesize the activation-maximization image", "Run"):
                button = page.locator('[data-testid="stMain"]').get_by_role(
                    "button", name=re.compile(rf"^\W*{re.escape(label)}$")
                )
                if button.count():
                    act(page, button.first.click, timeout=240)
        slug = re.sub(r"\W+", "_", title.lower()).strip("_")
        screenshot(page, out_dir / f"{i:02d}_{slug}.png")
        found[title] = problems(page)
    return found


# --------------------------------------------------------------------------------------------
# The test
# --------------------------------------------------------------------------------------------
def loaded_libraries(pid: int) -> set[str]:
    """File names of the shared libraries process ``pid`` has mapped (Linux)."""
    with open(f"/proc/{pid}/maps", encoding="utf-8", errors="replace") as maps:
        return {Path(line.split()[-1]).name for line in maps if "/" in line}


def test_upload_model_and_image_then_grad_cam_in_chromium(
    model_files, scan_data, tmp_path, monkeypatch
):
    if not Path(CHROMIUM).exists():
        pytest.skip(
            f"no Chromium at {CHROMIUM}: install Debian's chromium package (.ci/run does "
            "it in CI) or set VIZKIT_CHROMIUM to run the end-to-end browser test"
        )
    pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    from tests.dashboards.conftest import png_bytes

    image = tmp_path / "photo.png"
    image.write_bytes(png_bytes(7, (40, 52)))
    log = tmp_path / "streamlit.log"
    uploads = tmp_path / "uploads"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "failure.png").unlink(missing_ok=True)
    requests: list[str] = []
    processes: list = []
    monkeypatch.setenv("VIZKIT_DASHBOARD_DATA", str(scan_data))  # the Dataset page's scan
    try:
        with serve(str(model_files["tiny"]), log, uploads=uploads, processes=processes) as url:
            with browser_page(requests) as page:
                try:
                    scenario(page, url, model_files["other"], image)
                    assert list(uploads.rglob("*.keras")), "the upload was not kept"
                except Exception:
                    page.screenshot(path=str(ARTIFACTS / "failure.png"), full_page=True)
                    raise
            assert foreign(requests, url) == [], foreign(requests, url)
            if Path(f"/proc/{processes[0].pid}/maps").exists():  # models live in the workers
                tensorflow = {n for n in loaded_libraries(processes[0].pid) if "tensorflow" in n}
                assert not tensorflow, f"the server process loaded {sorted(tensorflow)}"
            # the browser is gone: Streamlit drops the session, which deletes its upload
            deadline = time.monotonic() + 60
            while list(uploads.rglob("*.keras")) and time.monotonic() < deadline:
                time.sleep(0.5)
            assert not list(uploads.rglob("*.keras")), "the ended session's upload is still kept"
    except Exception:
        if log.exists():
            print(log.read_text(errors="replace")[-4000:])
        raise


def fragment_runs(page, name: str) -> int:
    """How many times a page fragment (e.g. the attribution grid) has run."""
    return int(
        page.evaluate(
            f"() => {{ const e = document.getElementById('vk-fragment-{name}'); "
            "return e ? +e.dataset.run : 0; }"
        )
    )


def display_change_redraws_only_the_grid(page, timeout: float = 60.0) -> None:
    """Moving the opacity slider reruns the grid fragment, not the whole script."""
    runs, grids = run_number(page), fragment_runs(page, "attr")
    slider = page.locator('[data-testid="stSlider"]', has_text="Overlay opacity")
    slider.get_by_role("slider").first.focus()
    page.keyboard.press("ArrowRight")
    deadline = time.monotonic() + timeout
    while fragment_runs(page, "attr") == grids and time.monotonic() < deadline:
        time.sleep(0.1)
    assert fragment_runs(page, "attr") > grids, "the grid was not redrawn"
    assert run_number(page) == runs, "a display change reran the whole page"


def scenario(page, url: str, model_file: Path, image: Path) -> None:
    from playwright.sync_api import expect

    act(page, lambda: page.goto(url, wait_until="domcontentloaded"))
    page.locator("h1", has_text="Model").first.wait_for()

    sidebar = page.locator('[data-testid="stSidebar"]')
    uploads = sidebar.locator('[data-testid="stFileUploaderDropzoneInput"]')
    act(page, lambda: uploads.nth(0).set_input_files(str(model_file)))  # the model uploader
    expect(sidebar.get_by_role("combobox", name="Model to inspect")).to_have_value(
        f"Upload: {model_file.name}"
    )
    assert problems(page) == [], problems(page)
    images = sidebar.locator('[data-testid="stFileUploader"]', has_text="Images (PNG")
    drop = images.locator('[data-testid="stFileUploaderDropzoneInput"]')
    act(page, lambda: drop.set_input_files(str(image)))  # the images uploader (not the labels')
    sidebar.locator('[data-testid="stMultiSelect"]', has_text=image.name).wait_for()

    started = time.monotonic()
    open_page(page, "Attribution")
    main_images(page).first.wait_for()
    seconds = time.monotonic() - started
    assert page.locator('[data-testid="stMain"]').get_by_text("Grad-CAM").count() > 0
    width = main_images(page).first.evaluate("img => img.naturalWidth")
    assert width > 100, width
    assert problems(page) == [], problems(page)
    screenshot(page, ARTIFACTS / "00_grad_cam_after_upload.png")
    print(f"Grad-CAM result shown {seconds:.1f} s after opening the page")
    display_change_redraws_only_the_grid(page)

    found = tour(page, ARTIFACTS)
    assert all(not v for v in found.values()), found
    shots = sorted(p.name for p in ARTIFACTS.glob("0*_*.png"))
    assert len(shots) >= len(PAGES) + 1, shots


# --------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Screenshot every dashboard page.")
    parser.add_argument("--model", default="sample:imagenet_lite0")
    parser.add_argument("--out", default=str(ARTIFACTS))
    parser.add_argument("--no-run", action="store_true", help="do not press Run buttons")
    parser.add_argument(
        "--methods",
        default="",
        help="comma-separated method labels to add on the Attribution page, e.g. "
        '"Saliency (vanilla gradient),Integrated gradients"',
    )
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    log = out / "streamlit.log"
    with serve(args.model, log, max_steps=None) as url, browser_page() as page:
        act(page, lambda: page.goto(url, wait_until="domcontentloaded"), timeout=300)
        page.locator("h1", has_text="Model").first.wait_for()
        methods = [m.strip() for m in args.methods.split(",") if m.strip()]
        found = tour(page, out, run_long=not args.no_run, methods=methods)
    (out / "streamlit.log").unlink(missing_ok=True)
    bad = {k: v for k, v in found.items() if v}
    print("problems:", bad or "none")
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
