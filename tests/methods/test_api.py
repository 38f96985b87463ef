"""The engine's API: registry metadata, parameter validation, layers, heads, caching."""

from __future__ import annotations

import numpy as np
import pytest

import vizkit
from tests.methods import zoo
from vizkit.models import model_cache
from vizkit.registry import Param

LAYER_FAMILIES = {"cam", "score-cam", "activation-cam"}


def _method_classes(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from _method_classes(sub)


def test_registry_metadata_is_complete():
    from vizkit.methods import Method
    from vizkit.registry import FAMILIES

    names = vizkit.available_methods()
    assert names and len(names) == len(set(names))
    declared = {
        c.name for c in _method_classes(Method) if c.name and c.__module__.startswith("vizkit.")
    }
    assert declared == set(names)  # every method class with a name is registered
    for name in names:
        info = vizkit.get_method(name)
        assert info.label and info.reference and info.family in FAMILIES
        assert 200 <= len(info.description) <= 900, (name, len(info.description))
        assert "\n" not in info.description and "  " not in info.description
        params = [p.name for p in info.params]
        assert "score" in params and "batch_size" in params
        assert len(params) == len(set(params))
        for p in info.params:
            assert isinstance(p, Param) and p.help and p.label, (name, p.name)
            assert p.type in (int, float, str, bool)
            if p.type is str:
                assert p.choices and p.default in p.choices
            if p.type in (int, float):
                assert p.min is not None and p.max is not None
                if p.default is None:  # "automatic": the help says what None means
                    assert "None" in p.help, (name, p.name)
                else:
                    assert p.min <= p.default <= p.max
        assert info.needs_layer == (info.family in LAYER_FAMILIES)
        assert info.cls.name == name and info.cls.family == info.family
    assert "seed" in [p.name for p in vizkit.get_method("smoothgrad").params]


def test_register_reads_the_class_facts_and_refuses_incomplete_ones():
    from vizkit.methods.base import Method, common_params
    from vizkit.registry import register

    class Nameless(Method):
        label, reference, family = "X", "Y (2020)", "gradient"

    with pytest.raises(TypeError, match="does not declare name, description"):
        register(Nameless)

    class Odd(Method):
        name, label, reference, description = "odd", "Odd", "Y (2020)", "Some words."
        family = "magic"
        hyperparameters = common_params()

    with pytest.raises(TypeError, match="family is 'magic'"):
        register(Odd)
    assert "odd" not in vizkit.available_methods()


def test_engine_is_a_param_with_choices():
    for name in vizkit.available_methods():
        engine = {p.name: p for p in vizkit.get_method(name).params}.get("engine")
        if engine is not None:
            assert engine.choices == ("native", "tf-keras-vis") and engine.default == "native"
    model = zoo.sequential()
    with pytest.raises(vizkit.InputError, match="'engine' is 'keras-vis'.*'native'"):
        vizkit.explain(model, zoo.images(1), "gradcam", engine="keras-vis")
    with pytest.raises(vizkit.InputError, match="no parameter 'engine'"):
        vizkit.explain(model, zoo.images(1), "scorecam", engine="tf-keras-vis")
    e = vizkit.explain(model, zoo.images(1), "gradcam")
    assert e.params["engine"] == "native" and e.family == "cam"


def test_bad_parameters_are_clear_errors():
    model = zoo.sequential()
    x = zoo.images(1)
    with pytest.raises(vizkit.InputError, match="no parameter 'sample'.*samples"):
        vizkit.explain(model, x, "smoothgrad", sample=3)
    with pytest.raises(vizkit.InputError, match="at least 1"):
        vizkit.explain(model, x, "integrated_gradients", steps=0)
    with pytest.raises(vizkit.InputError, match="'logit', 'probability'"):
        vizkit.explain(model, x, "saliency", score="prob")
    with pytest.raises(vizkit.InputError, match="unknown method 'gradcam2'"):
        vizkit.explain(model, x, "gradcam2")
    with pytest.raises(vizkit.InputError, match="out of range"):
        vizkit.explain(model, x, "saliency", targets=3)
    with pytest.raises(vizkit.InputError, match="does not use a layer"):
        vizkit.get_method("saliency").cls(model, layer="conv1")


def test_class_form_equals_functional_form():
    model = zoo.sequential()
    x = zoo.images()
    method = vizkit.get_method("smoothgrad").cls(model, samples=3, seed=1)
    assert method.params["samples"] == 3
    a = method.explain(x, targets=[0, 1, 2])
    b = vizkit.explain(model, x, "smoothgrad", targets=[0, 1, 2], samples=3, seed=1)
    np.testing.assert_allclose(a.maps, b.maps, rtol=1e-6)
    assert "samples=3" in repr(method)


def test_layers_by_path_inner_name_and_index():
    model = zoo.nested()
    x = zoo.images(1)
    for ref in ("base/inner_conv1", "inner_conv1"):
        assert vizkit.explain(model, x, "gradcam", layer=ref).layer == "base/inner_conv1"
    with pytest.raises(vizkit.LayerError, match="not a spatial.*base/inner_conv1"):
        vizkit.explain(model, x, "gradcam", layer="probs")
    with pytest.raises(vizkit.LayerError, match="no layer named 'nope'"):
        vizkit.explain(model, x, "layercam", layer="nope")
    seq = zoo.sequential()
    assert vizkit.explain(seq, x, "gradcam", layer=0).layer == "conv1"


def test_candidate_layers_rank_spatial_layers_deepest_first():
    model = zoo.nested()
    candidates = vizkit.candidate_layers(model)
    assert [c.path for c in candidates] == ["base/inner_conv", "base/inner_conv1"]
    first = candidates[0]
    assert (first.height, first.width, first.channels) == (12, 12, 6)
    assert first.receptive_field == (5.0, 5.0) and first.jump == (1.0, 1.0)
    assert first.rank == 0 and "inner_conv" in first.label
    seq = vizkit.candidate_layers(zoo.sequential())
    assert [c.path for c in seq] == ["conv2", "pool1", "conv1"]
    assert seq[0].receptive_field == (8.0, 8.0)
    assert vizkit.explain(zoo.sequential(), zoo.images(1), "gradcam").layer == "conv2"


def test_no_spatial_layer_is_a_clear_error():
    from vizkit._tf import keras

    inputs = keras.Input((4, 4, 1))
    y = keras.layers.Dense(2, activation="softmax")(keras.layers.Flatten()(inputs))
    model = keras.Model(inputs, y)
    assert vizkit.candidate_layers(model) == []
    with pytest.raises(vizkit.LayerError, match="no layer with a spatial"):
        vizkit.explain(model, np.zeros((1, 4, 4, 1), np.float32), "gradcam")
    assert vizkit.explain(model, np.zeros((1, 4, 4, 1), np.float32), "saliency").maps.shape == (
        1,
        4,
        4,
    )


def test_multi_output_heads():
    model = zoo.multi_output()
    x = zoo.images()
    with pytest.raises(vizkit.InputError, match="pick one with output="):
        vizkit.explain(model, x, "saliency")
    by_name = vizkit.explain(model, x, "saliency", output="kind", targets=1)
    by_index = vizkit.explain(model, x, "saliency", output=1, targets=1)
    np.testing.assert_allclose(by_name.maps, by_index.maps)
    binary = vizkit.explain(model, x, "saliency", output="is_object", score="probability")
    p = np.asarray(model(x)[0])[:, 0]
    np.testing.assert_array_equal(binary.targets, (p > 0.5).astype(int))
    np.testing.assert_allclose(binary.scores, np.where(p > 0.5, p, 1 - p), rtol=1e-5)
    assert binary.output == 0 and by_name.output == 1


def test_sigmoid_class_zero_is_the_negated_logit():
    model = zoo.sigmoid_binary()
    x = zoo.images()
    one = vizkit.explain(model, x, "saliency", targets=1)
    zero = vizkit.explain(model, x, "saliency", targets=0)
    np.testing.assert_allclose(zero.maps, -one.maps, rtol=1e-6)
    np.testing.assert_allclose(zero.scores, -one.scores, rtol=1e-6)


def test_repeated_calls_reuse_compiled_functions():
    model = zoo.sequential()
    for method in ("saliency", "gradcam", "occlusion", "smoothgrad"):
        vizkit.explain(
            model, zoo.images(2), method, samples=2
        ) if method == "smoothgrad" else vizkit.explain(model, zoo.images(2), method)
    cache = model_cache(model)
    entries = dict(cache)
    functions = [v for v in cache.values() if hasattr(v, "experimental_get_tracing_count")]
    counts = [f.experimental_get_tracing_count() for f in functions]
    for n in (1, 3, 5):
        x = zoo.images(n, seed=n)
        vizkit.explain(model, x, "saliency")
        vizkit.explain(model, x, "gradcam")
        vizkit.explain(model, x, "occlusion", batch_size=7)
        vizkit.explain(model, x, "smoothgrad", samples=2)
    assert dict(cache).keys() == entries.keys()
    assert all(cache[k] is entries[k] for k in entries)
    assert [f.experimental_get_tracing_count() for f in functions] == counts


def test_inputs_as_image_batch_keep_value_range_and_class_names():
    from vizkit.inputs import ImageBatch

    batch = ImageBatch(
        array=np.array(zoo.images()), value_range=(0.0, 1.0), class_names=("a", "b", "c")
    )
    e = vizkit.explain(zoo.sequential(), batch, "saliency")
    assert e.value_range == (0.0, 1.0) and e.class_names == ("a", "b", "c")
    assert e.class_name(1) == "b"


def test_probability_score_on_a_logits_model_applies_the_softmax():
    model = zoo.logits()
    x = zoo.images()
    probs = zoo.head_probabilities(model, x)
    e = vizkit.explain(model, x, "saliency", score="probability", targets=[0, 1, 2])
    np.testing.assert_allclose(e.scores, probs[np.arange(3), [0, 1, 2]], rtol=1e-5)
    occ = vizkit.explain(model, x, "occlusion", targets=[0, 1, 2])
    assert occ.score_kind == "probability"
    np.testing.assert_allclose(occ.scores, probs[np.arange(3), [0, 1, 2]], rtol=1e-5)
    assert np.abs(occ.maps).max() <= 1.0


def test_paths_keep_image_metadata(tmp_path):
    from PIL import Image

    path = tmp_path / "a.png"
    Image.fromarray((np.array(zoo.images(1)[0]) * 255).astype(np.uint8)).save(path)
    e = vizkit.explain(zoo.sequential(), [str(path)], "saliency")
    assert e.maps.shape == (1, 16, 16) and e.value_range == (0.0, 1.0)
