"""Reports, figure styles and figure files (vizkit.report, vizkit.plotting.style/figures)."""

from __future__ import annotations

import hashlib
import io
import json
import re
from pathlib import Path

import numpy as np
import pytest
from matplotlib.figure import Figure

from vizkit.plotting.figures import figure_data_uri, new_figure, save_figure
from vizkit.plotting.style import OKABE_ITO, style

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
HISTORY = {
    "loss": [1.0, 0.7, 0.5],
    "val_loss": [1.1, 0.8, 0.7],
    "accuracy": [0.4, 0.6, 0.8],
    "val_accuracy": [0.3, 0.5, 0.6],
}


# --------------------------------------------------------------------------------------------
# Fixtures: a tiny seeded CNN saved as .keras, and two images
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from vizkit._tf import keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input((12, 12, 1))
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv1")(inputs)
    x = keras.layers.Conv2D(6, 3, padding="same", activation="relu", name="conv2")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    outputs = keras.layers.Dense(3, activation="softmax", name="head")(x)
    model = keras.Model(inputs, outputs, name="tiny")
    folder = tmp_path_factory.mktemp("tiny")
    path = folder / "tiny.keras"
    model.save(path)
    from PIL import Image

    rng = np.random.default_rng(0)
    images = []
    for i in range(2):
        image = folder / f"img{i}.png"
        Image.fromarray((rng.random((12, 12)) * 255).astype("uint8")).save(image)
        images.append(str(image))
    return {"model": model, "path": path, "images": images}


# --------------------------------------------------------------------------------------------
# Styles
# --------------------------------------------------------------------------------------------
def test_paper_style_sets_and_restores_rcparams():
    import matplotlib

    before = dict(matplotlib.rcParams)
    with style("paper") as params:
        rc = matplotlib.rcParams
        assert rc["font.family"] == ["serif"]
        assert rc["pdf.fonttype"] == 42 and rc["ps.fonttype"] == 42
        assert rc["savefig.dpi"] == 300
        assert [c.lower() for c in rc["axes.prop_cycle"].by_key()["color"]][:3] == [
            c.lower() for c in OKABE_ITO[:3]
        ]
        assert rc["image.cmap"] == "viridis"
        assert params["font.family"] == "serif"
    assert dict(matplotlib.rcParams) == before


def test_screen_style_and_unknown_style():
    import matplotlib

    from vizkit.errors import InputError

    with style("screen"):
        assert matplotlib.rcParams["font.family"] == ["sans-serif"]
        assert matplotlib.rcParams["savefig.dpi"] == 150
    with pytest.raises(InputError, match="unknown style 'poster'"):
        with style("poster"):
            pass


def test_vizkit_style_is_the_public_context_manager():
    import vizkit

    assert vizkit.style is style


# --------------------------------------------------------------------------------------------
# Figure files
# --------------------------------------------------------------------------------------------
def _pdf_fonts(path: Path) -> list[dict]:
    from pypdf import PdfReader

    reader = PdfReader(str(path))
    found = []
    for page in reader.pages:
        fonts = page["/Resources"].get("/Font", {})
        for ref in fonts.values():
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


def test_save_figure_writes_vector_pdf_svg_and_300dpi_png(tmp_path):
    from PIL import Image
    from pypdf import PdfReader

    with style("paper"):
        fig = new_figure(3.0, 2.0)
        ax = fig.add_subplot()
        ax.plot([0, 1, 2], [1, 0, 2], label="curve")
        ax.set_title("Saliency")
        written = save_figure(fig, tmp_path / "sub" / "demo")
    assert set(written) == {"png", "pdf", "svg"}
    assert all(p.exists() for p in written.values())

    fonts = _pdf_fonts(written["pdf"])
    assert fonts and all(f["embedded"] for f in fonts), fonts
    assert any("Serif" in f["name"] for f in fonts)
    reader = PdfReader(str(written["pdf"]))
    assert "Saliency" in reader.pages[0].extract_text()  # real text, not a raster
    xobjects = reader.pages[0]["/Resources"].get("/XObject")
    xobjects = xobjects.get_object() if xobjects is not None else {}
    assert not [x for x in xobjects.values() if x.get_object().get("/Subtype") == "/Image"]

    with Image.open(written["png"]) as png:
        assert round(png.info["dpi"][0]) == 300
        assert png.size[0] > 600  # about 3 inches at 300 dpi (tight box)

    svg = written["svg"].read_text()
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg
    assert "<image" not in svg  # vector paths only


def test_saved_vector_files_are_deterministic(tmp_path):
    def draw(stem):
        with style("paper"):
            fig = new_figure(2.0, 2.0)
            fig.add_subplot().imshow(np.arange(16.0).reshape(4, 4))
            return save_figure(fig, stem, ["pdf", "svg"])

    first, second = draw(tmp_path / "a"), draw(tmp_path / "b")
    for fmt in ("pdf", "svg"):
        assert first[fmt].read_bytes() == second[fmt].read_bytes()


def test_figure_helpers_do_not_use_pyplot():
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    fig = new_figure(2.0, 1.0)
    fig.add_subplot().plot([0, 1])
    uri = figure_data_uri(fig, dpi=50)
    assert isinstance(fig, Figure) and uri.startswith("data:image/png;base64,")
    assert plt.get_fignums() == before


def test_save_figure_rejects_unknown_format(tmp_path):
    from vizkit.errors import InputError

    with pytest.raises(InputError, match="unknown figure format 'eps'"):
        save_figure(new_figure(), tmp_path / "x", ["eps"])


# --------------------------------------------------------------------------------------------
# build_report
# --------------------------------------------------------------------------------------------
def _escaped(text: str) -> str:
    import html

    return html.escape(text, quote=True)


def _section_status(settings: dict) -> dict[str, str]:
    return {k: v["status"] for k, v in settings["sections"].items()}


def test_build_report_writes_self_contained_html_figures_tables_and_settings(tiny, tmp_path):
    import vizkit

    out = tmp_path / "report"
    path = vizkit.build_report(
        str(tiny["path"]),
        tiny["images"],
        methods=["saliency", "gradcam"],
        out_dir=out,
        history=HISTORY,
        max_classes=2,
        seed=3,
        progress=False,
    )
    assert path == out / "report.html"
    html = path.read_text(encoding="utf-8")
    for sid in SECTION_IDS:
        assert f'<section id="{sid}"' in html
    # self-contained: every src is a data: URI; no stylesheet, script or remote reference
    assert re.findall(r'src="([^"]*)"', html) and all(
        s.startswith("data:image/") for s in re.findall(r'src="([^"]*)"', html)
    )
    assert "<script" not in html and "<link" not in html
    assert not re.search(r"src=\"(https?:)?//", html)
    # the only remote addresses are paper links, which load nothing until clicked
    remote = re.findall(r'<a ([^>]*)href="((?:https?:)?//[^"]*)"', html)
    assert remote and all(attrs == 'class="paper" ' for attrs, _ in remote), remote
    assert {url for _, url in remote} >= {
        "https://arxiv.org/abs/1312.6034",  # saliency
        "https://arxiv.org/abs/1610.02391",  # Grad-CAM
        "https://arxiv.org/abs/1806.07421",  # deletion / insertion (RISE)
    }
    assert "url(" not in html
    # each method and metric explained in plain language, from the registry and metric_info
    from vizkit.metrics import metric_info

    for text in (
        vizkit.get_method("saliency").description,
        vizkit.get_method("gradcam").description,
        metric_info("deletion").description,
    ):
        assert _escaped(text) in html

    settings = json.loads((out / "settings.json").read_text())
    status = _section_status(settings)
    assert status == {
        "summary": "ok",
        "training": "ok",
        "filters": "ok",
        "feature-maps": "ok",
        "activation-max": "ok",
        "images": "ok",
        "evaluation": "ok",
        "reproducibility": "ok",
    }, settings["sections"]
    digest = hashlib.sha256(tiny["path"].read_bytes()).hexdigest()
    assert settings["model"]["file_sha256"] == digest
    assert digest in html
    assert settings["settings"]["seed"] == 3
    assert settings["settings"]["methods"] == ["saliency", "gradcam"]
    assert settings["inputs"]["count"] == 2
    for package in ("vizkit", "keras", "numpy"):
        assert settings["versions"][package] not in ("", "not installed")
    assert settings["command_line"].startswith("vizkit report --model ")

    for rel in settings["files"]:
        assert (out / rel).is_file(), rel
    figures = {p.suffix for p in (out / "figures").iterdir()}
    assert figures == {".pdf", ".png", ".svg"}
    for csv in ("summary-layers.csv", "predictions.csv", "evaluation.csv", "versions.csv"):
        assert (out / "tables" / csv).is_file()
    import pandas as pd

    predictions = pd.read_csv(out / "tables" / "predictions.csv")
    assert len(predictions) == 2 * 3  # top-3 per image
    probabilities = tiny["model"].predict(
        vizkit.load_images(tiny["images"], tiny["model"]).array, verbose=0
    )
    top = predictions.groupby("image").first()
    np.testing.assert_allclose(
        sorted(top["probability"]), sorted(probabilities.max(axis=1)), rtol=1e-5
    )


def test_a_failing_section_is_recorded_and_the_report_still_builds(tiny, tmp_path, monkeypatch):
    import vizkit
    import vizkit.summary

    def broken(model, expand_nested=False):
        raise RuntimeError("boom\nsecond line")

    monkeypatch.setattr(vizkit.summary, "summarize", broken)
    calls = []
    path = vizkit.build_report(
        tiny["model"],
        None,
        methods=["saliency"],
        out_dir=tmp_path,
        formats=["html"],
        max_classes=1,
        progress=lambda done, total: calls.append((done, total)),
    )
    assert calls[0] == (0, 8) and calls[-1] == (8, 8)  # one step per section
    settings = json.loads((tmp_path / "settings.json").read_text())
    status = _section_status(settings)
    assert status["summary"] == "failed"
    assert settings["sections"]["summary"]["reason"] == "RuntimeError: boom second line"
    assert status["images"] == "skipped" and status["training"] == "skipped"
    assert status["reproducibility"] == "ok"
    assert settings["model"]["file_sha256"] is None  # in-memory model: weights hash instead
    assert len(settings["model"]["weights_sha256"]) == 64
    html = path.read_text()
    assert "RuntimeError: boom second line" in html
    assert not (tmp_path / "figures").exists() or not any(
        p.suffix in (".pdf", ".svg", ".png") for p in (tmp_path / "figures").iterdir()
    )


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"methods": ["nope"]}, "InputError", "unknown method 'nope'"),
        ({"layers": ["conv9"]}, "LayerError", "no layer named 'conv9'"),
        ({"formats": ["html", "gif"]}, "InputError", "unknown report format 'gif'"),
        ({"targets": 7}, "InputError", "target 7 is out of range"),
        ({"style": "poster"}, "InputError", "unknown style 'poster'"),
    ],
)
def test_bad_arguments_fail_before_any_work(tiny, tmp_path, kwargs, error, message):
    import vizkit

    arguments = {"methods": ["saliency"], "progress": False, **kwargs}
    with pytest.raises(getattr(vizkit, error), match=re.escape(message)):
        vizkit.build_report(tiny["model"], tiny["images"], out_dir=tmp_path / "r", **arguments)
    assert not (tmp_path / "r").exists()


def test_report_embeds_pngs_that_decode(tiny, tmp_path):
    """A quick decode of every embedded image (the browser test checks rendering)."""
    import base64

    from PIL import Image

    import vizkit

    path = vizkit.build_report(
        tiny["model"],
        tiny["images"][:1],
        methods=["saliency"],
        out_dir=tmp_path,
        formats=["html"],
        max_classes=1,
        progress=False,
    )
    uris = re.findall(r'src="data:image/png;base64,([^"]+)"', path.read_text())
    assert len(uris) >= 4
    for uri in uris:
        with Image.open(io.BytesIO(base64.b64decode(uri))) as image:
            image.verify()


def test_sample_models_resolve_through_vizkit_samples(tiny, tmp_path, monkeypatch):
    """``sample:NAME`` uses vizkit.samples for the model, its images, history and class names."""
    import sys
    import types

    import vizkit
    from vizkit.inputs import ImageBatch

    rng = np.random.default_rng(1)
    fake = types.ModuleType("vizkit.samples")
    fake.sample_names = lambda: ["fake_cnn"]
    fake.sample_model = lambda name: tiny["model"]
    fake.sample_images = lambda name: ImageBatch(
        array=rng.random((3, 12, 12, 1)).astype(np.float32),
        names=("a.png", "b.png", "c.png"),
        labels=np.array([0, 2, 1]),
        class_names=("cat", "dog", "eel"),
    )
    fake.sample_history = lambda name: HISTORY
    fake.sample_metadata = lambda name: {"class_names": ["cat", "dog", "eel"]}
    fake.sample_path = lambda name: tiny["path"]
    monkeypatch.setitem(sys.modules, "vizkit.samples", fake)
    monkeypatch.setattr(vizkit, "samples", fake, raising=False)

    with pytest.raises(vizkit.InputError, match="unknown sample model 'nope': choose one of"):
        vizkit.build_report("sample:nope", out_dir=tmp_path / "x", progress=False)
    path = vizkit.build_report(
        "sample:fake_cnn",
        methods="saliency",
        out_dir=tmp_path,
        formats=["html"],
        max_images=2,
        max_classes=1,
        progress=False,
    )
    settings = json.loads((tmp_path / "settings.json").read_text())
    assert settings["model"]["spec"] == "sample:fake_cnn"
    assert settings["model"]["file"] == str(tiny["path"])
    assert settings["model"]["file_sha256"] == hashlib.sha256(tiny["path"].read_bytes()).hexdigest()
    assert settings["inputs"]["names"] == ["a.png", "b.png"]  # max_images
    assert settings["settings"]["history"] == "sample fake_cnn"
    assert _section_status(settings)["training"] == "ok"
    assert settings["command_line"].startswith("vizkit report --model sample:fake_cnn ")
    html = path.read_text()
    assert "True class: cat." in html and "True class: eel." in html
    assert ">dog<" in html or ">eel<" in html  # class names in the top-3 tables


def test_activation_max_section_maximizes_the_predicted_classes_of_a_large_head():
    """Up to max_classes classes: all of them; more (ImageNet's 1000): those predicted for the
    report's images, in order, without repeats."""
    from types import SimpleNamespace

    from vizkit._tf import keras
    from vizkit.report.model_sections import _maximized_classes

    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.GlobalAveragePooling2D()(inputs)
    model = keras.Model(inputs, keras.layers.Dense(20)(x))
    w, b = model.layers[-1].get_weights()
    w[:] = 0
    w[0, 7], w[1, 3] = 1.0, 1.0  # red -> class 7, green -> class 3
    model.layers[-1].set_weights([w, b * 0])
    images = np.zeros((3, 8, 8, 3), np.float32)
    images[0, ..., 0] = images[1, ..., 1] = images[2, ..., 0] = 1.0
    plan = SimpleNamespace(model=model, batch=images, class_names=[str(i) for i in range(20)])
    assert _maximized_classes(SimpleNamespace(**vars(plan), max_classes=5)) == [7, 3]
    assert _maximized_classes(SimpleNamespace(**vars(plan), max_classes=1)) == [7]
    assert _maximized_classes(SimpleNamespace(**vars(plan), max_classes=30)) == list(range(20))
