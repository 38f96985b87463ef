"""The ``vizkit`` command: exit codes, one-line errors, summary/explain, and an end-to-end report.

Most tests call :func:`vizkit.cli.main` in-process (TensorFlow loads once); two run real
subprocesses: the import-cost check and the end-to-end report on a sample model, whose HTML is then
opened in headless Chromium and whose PDFs are read with pypdf and rendered with pdftoppm.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from vizkit.cli import EXIT_MODEL, EXIT_OK, EXIT_USAGE, main

CHROMIUM = "/usr/bin/chromium"
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
SECTION_IDS = (
    "summary",
    "training",
    "filters",
    "feature-maps",
    "activation-max",
    "images",
    "evaluation",
    "reproducibility",
)
E2E_SAMPLE = "digits_cnn"
E2E_METHODS = "saliency,gradcam"


# --------------------------------------------------------------------------------------------
# Fixtures
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A tiny CNN, a model with a Lambda layer, a corrupt file and two images."""
    from PIL import Image

    from vizkit._tf import keras

    folder = tmp_path_factory.mktemp("cli")
    keras.utils.set_random_seed(0)
    inputs = keras.Input((12, 12, 1))
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv1")(inputs)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    outputs = keras.layers.Dense(3, activation="softmax", name="head")(x)
    keras.Model(inputs, outputs, name="tiny").save(folder / "tiny.keras")

    unsafe = keras.Sequential(
        [keras.Input((4, 4, 1)), keras.layers.Lambda(lambda t: t * 2.0), keras.layers.Flatten()]
    )
    unsafe.save(folder / "lambda.keras")
    (folder / "corrupt.keras").write_bytes(b"this is not a model")
    rng = np.random.default_rng(0)
    for i in range(2):
        pixels = (rng.random((12, 12)) * 255).astype("uint8")
        Image.fromarray(pixels).save(folder / f"img{i}.png")
    (folder / "broken.png").write_bytes(b"\x89PNG not really")
    return folder


def run(argv, capsys):
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_one_line_error(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("vizkit"), err
    assert "Traceback" not in err
    return lines[0]


# --------------------------------------------------------------------------------------------
# Fast paths
# --------------------------------------------------------------------------------------------
def test_help_is_fast_and_does_not_import_tensorflow():
    code = (
        "import sys\n"
        "from vizkit.cli import main\n"
        "rc = main(['--help'])\n"
        "rc2 = main(['report', '--help'])\n"
        "heavy = [m for m in ('tensorflow', 'keras', 'matplotlib', 'numpy') if m in sys.modules]\n"
        "print('RESULT', rc, rc2, heavy)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "RESULT 0 0 []" in done.stdout
    assert "exit codes:" in done.stdout and "--formats" in done.stdout


def test_version_and_usage_errors(capsys):
    import vizkit

    code, out, _ = run(["--version"], capsys)
    assert code == EXIT_OK and vizkit.__version__ in out
    code, _, err = run(["report", "--model", "x.keras"], capsys)
    assert code == EXIT_USAGE
    line = assert_one_line_error(err)
    assert "--out" in line and "vizkit report --help" in line
    code, _, err = run(["frobnicate"], capsys)
    assert code == EXIT_USAGE
    assert_one_line_error(err)
    code, _, err = run([], capsys)
    assert code == EXIT_USAGE and "usage:" in err


# --------------------------------------------------------------------------------------------
# Bad input: documented exit codes, one line, no traceback
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("argv", "exit_code", "message"),
    [
        (["summary", "--model", "{d}/missing.keras"], EXIT_USAGE, "does not exist"),
        (["summary", "--model", "{d}/lambda.keras"], EXIT_MODEL, "--trust"),
        (["summary", "--model", "{d}/corrupt.keras"], EXIT_MODEL, "not a Keras model"),
        (["summary", "--model", "sample:no_such_sample"], EXIT_USAGE, "no_such_sample"),
        (
            [
                "explain",
                "--model",
                "{d}/tiny.keras",
                "--image",
                "{d}/img0.png",
                "--method",
                "magic",
                "--out",
                "{d}/o.png",
            ],
            EXIT_USAGE,
            "unknown method 'magic'",
        ),
        (
            [
                "explain",
                "--model",
                "{d}/tiny.keras",
                "--image",
                "{d}/img0.png",
                "--layer",
                "conv9",
                "--out",
                "{d}/o.png",
            ],
            EXIT_USAGE,
            "no layer named 'conv9'",
        ),
        (
            [
                "explain",
                "--model",
                "{d}/tiny.keras",
                "--image",
                "{d}/nope.png",
                "--out",
                "{d}/o.png",
            ],
            EXIT_USAGE,
            "does not exist",
        ),
        (
            [
                "explain",
                "--model",
                "{d}/tiny.keras",
                "--image",
                "{d}/broken.png",
                "--out",
                "{d}/o.png",
            ],
            EXIT_USAGE,
            "broken.png",
        ),
        (
            [
                "explain",
                "--model",
                "{d}/tiny.keras",
                "--image",
                "{d}/img0.png",
                "--out",
                "{d}/o.gif",
            ],
            EXIT_USAGE,
            ".png, .pdf or .svg",
        ),
        (
            [
                "explain",
                "--model",
                "{d}/tiny.keras",
                "--image",
                "{d}/img0.png",
                "--target",
                "9",
                "--out",
                "{d}/o.png",
            ],
            EXIT_USAGE,
            "target 9 is out of range",
        ),
        (
            ["report", "--model", "{d}/tiny.keras", "--methods", "saliency,nope", "--out", "{d}/r"],
            EXIT_USAGE,
            "unknown method 'nope'",
        ),
        (
            ["report", "--model", "{d}/tiny.keras", "--layers", "conv9", "--out", "{d}/r"],
            EXIT_USAGE,
            "no layer named 'conv9'",
        ),
        (
            ["report", "--model", "{d}/tiny.keras", "--formats", "html,gif", "--out", "{d}/r"],
            EXIT_USAGE,
            "unknown format 'gif'",
        ),
        (
            ["report", "--model", "{d}/tiny.keras", "--targets", "x", "--out", "{d}/r"],
            EXIT_USAGE,
            "not a comma-separated list",
        ),
    ],
    ids=[
        "missing-model",
        "refused-model",
        "corrupt-model",
        "unknown-sample",
        "unknown-method",
        "wrong-layer",
        "missing-image",
        "unreadable-image",
        "bad-output-suffix",
        "target-out-of-range",
        "report-unknown-method",
        "report-wrong-layer",
        "report-unknown-format",
        "report-bad-targets",
    ],
)
def test_bad_input_gives_documented_exit_code_and_one_line(files, capsys, argv, exit_code, message):
    argv = [a.replace("{d}", str(files)) for a in argv]
    code, out, err = run(argv, capsys)
    assert code == exit_code, err
    line = assert_one_line_error(err)
    assert message in line
    assert not (files / "r").exists() and not (files / "o.png").exists()


def test_debug_shows_the_traceback(files, capsys):
    code, _, err = run(["summary", "--model", files / "corrupt.keras", "--debug"], capsys)
    assert code == EXIT_MODEL
    assert "Traceback" in err and err.strip().splitlines()[-1].startswith("vizkit: error:")


def test_python_dash_m_reports_errors_without_traceback(files):
    done = subprocess.run(
        [sys.executable, "-m", "vizkit", "summary", "--model", str(files / "missing.keras")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == EXIT_USAGE
    assert done.stderr.strip() == (
        f"vizkit: error: model file {str(files / 'missing.keras')!r} does not exist"
    )


# --------------------------------------------------------------------------------------------
# Commands that work
# --------------------------------------------------------------------------------------------
def test_summary_prints_the_layer_table(files, capsys):
    code, out, err = run(["summary", "--model", files / "tiny.keras"], capsys)
    assert code == EXIT_OK, err
    assert "conv1 (Conv2D)" in out and "Total params: 55" in out
    code, out, _ = run(["summary", "--model", files / "tiny.keras", "--format", "csv"], capsys)
    assert code == EXIT_OK and out.splitlines()[0].startswith("path,name,type")


def test_methods_lists_registered_methods(capsys):
    from vizkit.metrics import METRIC_INFO
    from vizkit.registry import available_methods, get_method

    code, out, _ = run(["methods"], capsys)
    assert code == EXIT_OK
    flat = " ".join(out.split())  # descriptions are wrapped
    for name in available_methods():
        info = get_method(name)
        assert f"{name}: {info.label}" in out
        assert info.description in flat  # the plain-language paragraph
        assert info.url is None or info.url in out  # and the paper
    for info in METRIC_INFO.values():
        assert f"{info.name}: {info.label}" in out and info.description in flat
    assert sum(get_method(name).url is not None for name in available_methods()) == len(
        available_methods()
    ), "every method links its paper"
    code, out, _ = run(["methods", "gradcam", "--brief"], capsys)
    assert code == EXIT_OK and out.split() == ["gradcam", "Grad-CAM", "(uses", "a", "layer)"]
    code, _, err = run(["methods", "gradcm"], capsys)
    assert code == 2 and "unknown method or metric 'gradcm'" in err


@pytest.mark.parametrize("suffix", ["png", "pdf"])
def test_explain_writes_one_figure(files, tmp_path, capsys, suffix):
    out_file = tmp_path / f"gradcam.{suffix}"
    code, out, err = run(
        [
            "explain",
            "--model",
            files / "tiny.keras",
            "--image",
            files / "img0.png",
            "--method",
            "gradcam",
            "--layer",
            "conv1",
            "--out",
            out_file,
        ],
        capsys,
    )
    assert code == EXIT_OK, err
    assert out.strip() == str(out_file) and out_file.stat().st_size > 1000
    if suffix == "pdf":
        from pypdf import PdfReader

        assert len(PdfReader(str(out_file)).pages) == 1


def test_explain_layers_side_by_side(files, tmp_path, capsys, monkeypatch):
    """--layers all: up to 6 layers from one sweep; named layers in the order given."""
    import vizkit
    from vizkit._tf import keras
    from vizkit.results.sweep import LayerSweep

    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((12, 12, 1)),
            keras.layers.Conv2D(4, 3, activation="relu", name="conv1"),
            keras.layers.Conv2D(4, 3, activation="relu", name="conv2"),
            keras.layers.GlobalAveragePooling2D(name="gap"),
            keras.layers.Dense(3, activation="softmax", name="head"),
        ],
        name="two_convs",
    )
    model.save(tmp_path / "two.keras")
    shown = []
    compare = LayerSweep.compare

    def spy(self, layers=None):
        result = compare(self, layers)
        shown.append([e.layer for e in result])
        return result

    monkeypatch.setattr(LayerSweep, "compare", spy)
    base = ["explain", "--model", tmp_path / "two.keras", "--image", files / "img0.png"]
    code, out, err = run([*base, "--layers", "all", "--out", tmp_path / "all.png"], capsys)
    assert code == EXIT_OK, err
    assert shown[-1] == [c.path for c in vizkit.candidate_layers(model)]
    assert (tmp_path / "all.png").stat().st_size > 1000
    code, out, err = run(
        [*base, "--layers", "conv1", "conv2", "--out", tmp_path / "two.pdf"], capsys
    )
    assert code == EXIT_OK, err
    assert shown[-1] == ["conv1", "conv2"]
    code, out, err = run(
        [*base, "--method", "saliency", "--layers", "all", "--out", tmp_path / "s.png"], capsys
    )
    assert (
        code == EXIT_USAGE
        and "--layers needs a method that uses a layer" in assert_one_line_error(err)
    )
    code, out, err = run(
        [*base, "--layer", "conv1", "--layers", "all", "--out", tmp_path / "b.png"], capsys
    )
    assert code == EXIT_USAGE and "not both" in assert_one_line_error(err)


def test_report_quiet_writes_nothing_to_stderr_and_progress_otherwise(files, tmp_path, capsys):
    base = [
        "report",
        "--model",
        files / "tiny.keras",
        "--images",
        files / "img0.png",
        "--methods",
        "saliency",
        "--formats",
        "html",
        "--max-classes",
        "1",
    ]
    code, out, err = run([*base, "--out", tmp_path / "quiet", "--quiet"], capsys)
    assert code == EXIT_OK, err
    assert out == "" and err == ""
    assert (tmp_path / "quiet" / "report.html").is_file()
    code, out, err = run([*base, "--out", tmp_path / "loud"], capsys)
    assert code == EXIT_OK
    assert out.strip() == str(tmp_path / "loud" / "report.html")
    assert "vizkit report" in err  # the progress bar
    settings = json.loads((tmp_path / "loud" / "settings.json").read_text())
    assert settings["command_line"].startswith("vizkit report --model ")
    assert "--methods saliency" in settings["command_line"]


# --------------------------------------------------------------------------------------------
# End to end: the CLI on a sample model, the HTML in headless Chromium, the PDFs
# --------------------------------------------------------------------------------------------
def _pdf_fonts(path: Path) -> list[dict]:
    """Each font of a PDF: its name and whether its program is embedded."""
    from pypdf import PdfReader

    found = []
    for page in PdfReader(str(path)).pages:
        for ref in page["/Resources"].get("/Font", {}).values():
            font = ref.get_object()
            descriptors = [font.get("/FontDescriptor")]
            for child in font.get("/DescendantFonts", []) or []:
                descriptors.append(child.get_object().get("/FontDescriptor"))
            embedded = any(
                d is not None
                and any(k in d.get_object() for k in ("/FontFile", "/FontFile2", "/FontFile3"))
                for d in descriptors
            )
            found.append({"name": str(font.get("/BaseFont")), "embedded": embedded})
    return found


def _sample_available(name: str) -> str | None:
    """None when the sample model can be used, else why not."""
    try:
        from vizkit import samples
    except ImportError as error:
        return f"vizkit.samples is not available ({error})"
    try:
        if name not in samples.sample_names():
            return f"sample {name!r} is not among {samples.sample_names()}"
        state, why = samples._catalog().status(name)  # building here would take minutes
        if state != "ok":
            return f"sample {name!r} is {state}: {why} (run `make samples`)"
    except Exception as error:  # noqa: BLE001
        return f"cannot look up sample {name!r}: {error}"
    return None


@pytest.fixture(scope="module")
def e2e(tmp_path_factory):
    reason = _sample_available(E2E_SAMPLE)
    if reason:
        pytest.skip(reason)
    out = tmp_path_factory.mktemp("e2e") / "report"
    env = {**os.environ, "VIZKIT_MAX_STEPS": os.environ.get("VIZKIT_MAX_STEPS", "40")}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "vizkit",
            "report",
            "--model",
            f"sample:{E2E_SAMPLE}",
            "--methods",
            E2E_METHODS,
            "--max-images",
            "2",
            "--max-classes",
            "10",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
        env=env,
    )
    return {"out": out, "done": done}


def test_cli_report_end_to_end_on_a_sample_model(e2e):
    done, out = e2e["done"], e2e["out"]
    assert done.returncode == EXIT_OK, done.stderr[-2000:]
    assert done.stdout.strip() == str(out / "report.html")
    assert "Traceback" not in done.stderr
    settings = json.loads((out / "settings.json").read_text())
    failed = {k: v for k, v in settings["sections"].items() if v["status"] != "ok"}
    assert not failed, failed
    assert settings["model"]["spec"] == f"sample:{E2E_SAMPLE}"
    assert settings["command_line"].startswith("vizkit report --model sample:")
    pdfs = sorted((out / "figures").glob("*.pdf"))
    assert len(pdfs) >= 6
    for pdf in pdfs:
        assert pdf.with_suffix(".svg").is_file() and pdf.with_suffix(".png").is_file()
    assert sorted(p.name for p in (out / "tables").glob("*.csv"))


def test_report_pdfs_are_valid_vector_files_with_embedded_fonts(e2e):
    from pypdf import PdfReader

    out = e2e["out"]
    assert e2e["done"].returncode == EXIT_OK
    pdfs = sorted((out / "figures").glob("*.pdf"))
    for pdf in pdfs:
        reader = PdfReader(str(pdf))
        assert len(reader.pages) == 1
        fonts = _pdf_fonts(pdf)
        assert fonts, f"{pdf.name} has no text"
        assert all(f["embedded"] for f in fonts), (pdf.name, fonts)
        assert reader.pages[0].extract_text().strip()
    if shutil.which("pdftoppm"):
        target = pdfs[0]
        done = subprocess.run(
            ["pdftoppm", "-r", "30", "-png", "-singlefile", str(target), str(out / "render")],
            capture_output=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert (out / "render.png").stat().st_size > 100


@pytest.mark.browser
def test_report_html_opens_offline_in_headless_chromium(e2e):
    if not Path(CHROMIUM).exists():
        pytest.skip(f"headless Chromium test needs {CHROMIUM} (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    html = e2e["out"] / "report.html"
    assert e2e["done"].returncode == EXIT_OK
    requests, failures, console = [], [], []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.on("request", lambda r: requests.append(r.url))
            page.on("requestfailed", lambda r: failures.append(r.url))
            page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
            page.goto(html.as_uri(), wait_until="load")
            for sid in SECTION_IDS:
                section = page.locator(f"section#{sid}")
                assert section.count() == 1, sid
                assert section.is_visible(), sid
                assert section.locator("h2").inner_text().strip()
            images = page.evaluate(
                "Array.from(document.images).map(i => [i.complete, i.naturalWidth, "
                "i.src.slice(0, 22)])"
            )
            statuses = page.evaluate(
                "Array.from(document.querySelectorAll('section')).map(s => s.dataset.status)"
            )
        finally:
            browser.close()
    outside = [u for u in requests if not u.startswith(("file://", "data:"))]
    assert not outside, outside
    assert not failures, failures
    assert not [c for c in console if c.startswith("error")], console
    assert len(images) >= 8
    assert all(
        done and width > 0 and src.startswith("data:image/png") for done, width, src in images
    )
    assert statuses == ["ok"] * len(SECTION_IDS)
