"""Image sources for the sidebar: sample images (converted for other models) and uploads.

Uploaded image bytes are decoded in the images worker (never in the server), once per file,
model, input scale and aspect-ratio choice (``ctx.spec``, ``ctx.resize``: the sidebar passes them
through); the session keeps the decoded images (at most ``2 * MAX_IMAGE_FILES``) until it ends.
A sample's own images are used as shipped when the chosen scale is the sample's, and converted
(in the compute worker) otherwise.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import vizkit
from dashboards import caches, jobs, work
from dashboards.context import Context
from dashboards.sessions import SessionData
from dashboards.settings import MAX_IMAGE_FILES

IMAGE_TYPES = ("png", "jpg", "jpeg", "bmp", "gif", "webp", "tif", "tiff")


def sample_pool(ctx: Context, sample: str) -> Any:
    """Sample ``sample``'s test images, converted when they belong to another model."""
    batch = caches.sample_images(sample)
    if sample == ctx.sample and ctx.spec.same_as(batch.input_spec):
        return batch
    return work.converted(ctx, sample, batch)


def uploaded_pool(
    ctx: Context, session: SessionData, files: Sequence[tuple[str, bytes]]
) -> tuple[Any | None, str, list[str]]:
    """Uploaded image files as one batch for ``ctx``'s model.

    Returns the batch of the files that worked (None when none did), the pool key (which the
    session holds until it ends) and one refusal line per file that did not (``"name: reason"``).
    """
    refused = [f"{name}: more than {MAX_IMAGE_FILES} images" for name, _ in files[MAX_IMAGE_FILES:]]
    files = [(name, hashlib.sha256(data).hexdigest(), data) for name, data in files]
    files = files[:MAX_IMAGE_FILES]
    how = (ctx.key, ctx.spec.label, ctx.spec.value_range, ctx.resize)
    missing = [f for f in files if (*how, f[1]) not in session.images]
    if missing:
        for (_, digest, _), found in zip(missing, work.decoded(ctx, missing)):
            session.images[(*how, digest)] = found
        while len(session.images) > 2 * MAX_IMAGE_FILES:
            session.images.popitem(last=False)
    batches = []
    for name, digest, _ in files:
        found = session.images[(*how, digest)]
        if isinstance(found, str):
            refused.append(f"{name}: {found}")
        else:
            batches.append(found)
    pool_key = jobs.make_key(*how, "upload", tuple(d for _, d, _ in files))
    if not batches:
        return None, pool_key, refused
    caches.registry().hold(session, [pool_key])
    return vizkit.ImageBatch.concat(batches), pool_key, refused
