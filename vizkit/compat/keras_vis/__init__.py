"""keras-vis on TensorFlow 2 / Keras 3: change the import lines, keep the code.

keras-vis (``pip install keras-vis``, last release 2017, unmaintained since 2020) needs
TensorFlow 1 graph mode. Tutorials, course notes and theses written for it run unchanged with::

    # from vis.visualization import visualize_saliency, visualize_cam, overlay
    # from vis.utils import utils
    from vizkit.compat.keras_vis.visualization import visualize_saliency, visualize_cam, overlay
    from vizkit.compat.keras_vis import utils

:mod:`~vizkit.compat.keras_vis.visualization` has ``visualize_saliency``, ``visualize_cam``,
``visualize_activation``, ``overlay`` and ``get_num_filters``; :mod:`~vizkit.compat.keras_vis.utils`
has ``find_layer_idx``, ``apply_modifications``, ``stitch_images``, ``load_img``, ``normalize``,
``deprocess_input`` and ``bgr2rgb``. Arguments, defaults, shapes, dtypes and value ranges are
keras-vis's: saliency and CAM maps are float32 ``(H, W)`` in [0, 1] (``plt.imshow(grads,
cmap="jet")`` works as written), activation images ``(H, W, C)`` in ``input_range``, ``uint8`` for
an int range.

Differences from keras-vis
--------------------------
1. **The head is scored on its logit.** A softmax/sigmoid output layer is explained through its
   pre-activation whether or not the tutorial's ``model.layers[i].activation =
   activations.linear`` + ``apply_modifications`` swap was made, so the swap is harmless but no
   longer needed, and the "without the swap the maps are poor" comparison of some tutorials
   shows good maps both times. Other layers are used with their current activation.
2. **apply_modifications rebuilds in memory** (``keras.models.clone_model`` and a weight copy)
   instead of saving to and loading from a temporary file, so it is fast and does not leak
   memory in loops. It returns a new model compiled with the same settings; the optimizer's state
   is not copied.
3. **Changes made in place are picked up** even without ``apply_modifications``: each call
   compares every layer's activation with the last call's and, if one changed, drops the
   model's cached graphs (vizkit's own methods called afterwards see the change too).
   keras-vis's TensorFlow 1 graph ignored such changes.
4. **visualize_saliency and visualize_cam** compute exactly what keras-vis computed. The guided
   and rectified (``"relu"``) rules apply to every ReLU, also ``ReLU()`` / ``Activation("relu")``
   layers and ReLUs inside nested models; a model without ReLUs gives the vanilla map (as
   keras-vis). The penultimate-layer search of ``visualize_cam`` also looks inside nested
   models. Only channels-last models; ``seed_input`` is one image ``(H, W, C)`` or a batch of one
   (``(H, W)`` for one-channel models). ``wrt_tensor`` takes ``model.layers[i].output``,
   ``model.input``, a layer name or an index.
5. **visualize_activation uses vizkit's optimizer** (:func:`vizkit.maximize_activation`: Fourier
   parameterization, random jitter/scale/rotation, Adam, deterministic with ``seed``) instead of
   RMSProp on raw pixels with an L6 norm and total variation. So the images differ (they are more
   readable). ``lp_norm_weight`` and ``tv_weight``, relative to ``act_max_weight``, scale
   vizkit's ``l2_weight`` (a pull towards mid-range rather than keras-vis's L6 pull towards 0)
   and ``tv_weight``: keras-vis's defaults (10 and 10 against 1) give vizkit's defaults, twice
   the ratio twice the weight, 0 turns one off. The image is the final one, not the lowest-loss
   one, and is returned as optimized, without keras-vis's contrast standardization (mean at
   mid-range, standard deviation 10 %), so the model responds to it as reported.
   ``seed_input``, ``input_modifiers`` and ``callbacks`` are ignored with a warning;
   ``backprop_modifier``, ``grad_modifier``, a ``wrt_tensor`` other than the input and a
   non-positive ``act_max_weight`` raise an error. ``max_iter`` and ``verbose`` work; vizkit's
   own parameters (``seed``, ``jitter``, ...) pass through ``**optimizer_params``. Tests cap the
   steps with ``VIZKIT_MAX_STEPS``.
6. **load_img** decodes with Pillow and returns RGB ``uint8``: the cv2-based keras-vis returned
   BGR (drop a following ``utils.bgr2rgb``), the scikit-image one returned floats for
   ``grayscale=True``. Resizing is bilinear; transparent pixels are composited on white.
7. ``input_modifiers.Jitter`` exists so imports keep working, but does nothing (vizkit jitters
   on its own). Not provided: ``visualize_*_with_losses`` (they take keras-vis ``Loss``
   objects), ``vis.callbacks``, ImageNet label helpers.

Errors are vizkit's (:class:`~vizkit.errors.InputError`, :class:`~vizkit.errors.LayerError`),
subclasses of ``ValueError`` like keras-vis's.
"""

from __future__ import annotations

from . import utils, visualization

__all__ = ["visualization", "utils"]
