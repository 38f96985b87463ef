"""``vizkit.explain_layers``: one method at many layers from one pass, against plain
``tf.GradientTape`` references, against ``explain`` layer by layer, and as a result object."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

import vizkit
from tests.methods import zoo
from tests.methods.test_golden import TARGETS, cam_reference, close
from vizkit._tf import tf
from vizkit.errors import InputError, LayerError
from vizkit.results.sweep import upsample

ONE_PASS = ("gradcam", "gradcam_pp", "layercam", "hirescam", "eigencam")


@pytest.fixture(scope="module")
def seq():
    return zoo.sequential()


def test_every_layer_matches_a_plain_tape_grad_cam(seq):
    """All candidate layers from one pass; each layer's weights, CAM and map equal Grad-CAM
    written by hand (split the network at the layer, tape the upper half)."""
    x = zoo.images()
    sweep = vizkit.explain_layers(seq, x, "gradcam", targets=TARGETS)
    assert sweep.layers == tuple(c.path for c in vizkit.candidate_layers(seq))
    assert {"conv1", "pool1", "conv2"} <= set(sweep.layers)
    for layer in sweep.layers:
        acts, grads = cam_reference(seq, x, TARGETS, layer)
        weights = grads.mean(axis=(1, 2))
        cam = np.maximum(np.einsum("nhwc,nc->nhw", acts, weights), 0)
        e = sweep[layer]
        assert e.layer == layer and e.method == "gradcam"
        close(e.extras["weights"], weights)
        close(e.extras["cam"], cam)
        reference = tf.image.resize(cam[..., None].astype(np.float32), x.shape[1:3])[..., 0]
        close(e.maps, reference.numpy())
        np.testing.assert_array_equal(e.targets, TARGETS)


@pytest.mark.parametrize("method", ONE_PASS)
@pytest.mark.parametrize("build", ["sequential", "nested", "relu_layers"])
def test_one_pass_equals_explain_layer_by_layer(method, build):
    model = zoo.BUILDERS[build]()
    x = zoo.images()
    sweep = vizkit.explain_layers(model, x, method, targets=TARGETS)
    for layer in sweep.layers:
        single = vizkit.explain(model, x, method, targets=TARGETS, layer=layer)
        e = sweep[layer]
        close(e.maps, single.maps, rtol=1e-4)
        close(e.extras["cam"], single.extras["cam"], rtol=1e-4)
        np.testing.assert_allclose(e.scores, single.scores, rtol=1e-6)
        assert e.predictions == single.predictions


@pytest.mark.parametrize(("build", "output"), [("sigmoid", None), ("multi_output", 1)])
def test_single_unit_and_second_heads(build, output):
    model, x = zoo.BUILDERS[build](), zoo.images()
    sweep = vizkit.explain_layers(model, x, "gradcam", output=output)
    for layer in sweep.layers:
        single = vizkit.explain(model, x, "gradcam", layer=layer, output=output)
        close(sweep[layer].maps, single.maps)
        np.testing.assert_array_equal(sweep[layer].targets, single.targets)


@pytest.mark.parametrize("method", ["scorecam", "guided_gradcam"])
def test_other_layer_methods_go_layer_by_layer(seq, method):
    x = zoo.images(2)
    targets = TARGETS[:2]
    sweep = vizkit.explain_layers(seq, x, method, layers=["conv2", "conv1"], targets=targets)
    assert sweep.layers == ("conv2", "conv1")
    for layer in sweep.layers:
        single = vizkit.explain(seq, x, method, targets=targets, layer=layer)
        close(sweep[layer].maps, single.maps, rtol=1e-5)


def test_tf_keras_vis_engine_goes_layer_by_layer(seq):
    x = zoo.images(2)
    sweep = vizkit.explain_layers(seq, x, "gradcam", ["conv2"], engine="tf-keras-vis")
    single = vizkit.explain(seq, x, "gradcam", layer="conv2", engine="tf-keras-vis")
    close(sweep["conv2"].maps, single.maps, rtol=1e-5)
    assert sweep["conv2"].params["engine"] == "tf-keras-vis"


def test_nested_layers_by_inner_name_and_index():
    model = zoo.nested()
    x = zoo.images()
    sweep = vizkit.explain_layers(model, x, layers=["inner_conv", "base/inner_conv1"])
    assert sweep.layers == ("base/inner_conv", "base/inner_conv1")
    assert sweep["inner_conv"].layer == "base/inner_conv"
    assert sweep[1].layer == "base/inner_conv1"
    assert sweep[-1].layer == "base/inner_conv1"
    assert "base/inner_conv" in sweep and len(sweep) == 2
    with pytest.raises(LayerError, match="not in this sweep"):
        sweep["gap"]
    with pytest.raises(LayerError, match="out of range"):
        sweep[5]


def test_target_objects_and_predicted_classes(seq):
    x = zoo.images()
    unit = vizkit.explain_layers(seq, x, layers=["conv2"], targets=vizkit.UnitTarget(1))
    single = vizkit.explain(seq, x, "gradcam", layer="conv2", targets=vizkit.UnitTarget(1))
    close(unit["conv2"].maps, single.maps)
    assert unit.template.target_description == single.target_description
    predicted = vizkit.explain_layers(seq, x, layers=["conv2"])
    np.testing.assert_array_equal(
        predicted["conv2"].targets, zoo.head_probabilities(seq, x).argmax(1)
    )


def test_bad_requests_get_one_line_errors(seq):
    x = zoo.images(1)
    with pytest.raises(InputError, match="does not use a layer"):
        vizkit.explain_layers(seq, x, "saliency")
    with pytest.raises(InputError, match="names no layers"):
        vizkit.explain_layers(seq, x, layers=[])
    with pytest.raises(LayerError, match="not a spatial"):
        vizkit.explain_layers(seq, x, layers=["flatten"])
    with pytest.raises(InputError, match="one method"):
        vizkit.explain_layers(seq, x, ["gradcam", "layercam"])
    with pytest.raises(InputError, match="no images"):
        vizkit.explain_layers(seq, x[:0])


def test_batches_progress_and_the_model_untouched(seq):
    x = zoo.images(5)
    before = [w.copy() for w in seq.get_weights()]
    seen = []
    chunked = vizkit.explain_layers(
        seq, x, targets=0, batch_size=2, progress=lambda done, total: seen.append((done, total))
    )
    whole = vizkit.explain_layers(seq, x, targets=0)
    for layer in whole.layers:
        close(chunked[layer].maps, whole[layer].maps, rtol=1e-5)
    assert seen[-1] == (3, 3)
    for a, b in zip(before, seq.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_the_result_pickles_plots_and_tabulates(seq):
    x = zoo.images(2)
    sweep = vizkit.explain_layers(seq, x, targets=[0, 1])
    assert repr(sweep).startswith("LayerSweep('gradcam', 3 layers, 2 images")
    again = pickle.loads(pickle.dumps(sweep))
    np.testing.assert_array_equal(again["conv1"].maps, sweep["conv1"].maps)
    assert not sweep.maps[0].flags.writeable
    frame = sweep.to_frame()
    assert len(frame) == len(sweep) * 2 and set(frame["layer"]) == set(sweep.layers)
    fig = sweep.plot(layers=["conv2", "conv1"])
    titles = [ax.get_title() for ax in fig.axes]
    assert any("conv2" in t for t in titles) and any("conv1" in t for t in titles)
    assert len(sweep.compare().explanations) == 3
    assert "<img" in sweep._repr_html_()


@pytest.mark.parametrize(("size_in", "size_out"), [(7, 224), (5, 32), (32, 32), (9, 4), (3, 7)])
def test_upsample_is_tensorflows_bilinear_resize(size_in, size_out):
    rng = np.random.default_rng(size_in)
    maps = rng.normal(size=(2, size_in, size_in + 2)).astype(np.float32)
    size = (size_out, size_out + 3)
    expected = tf.image.resize(maps[..., None], size, method="bilinear")[..., 0].numpy()
    np.testing.assert_allclose(upsample(maps, size), expected, rtol=1e-5, atol=1e-5)
