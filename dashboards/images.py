"""Image sources for the sidebar: sample images (converted for other models) and uploads.

Uploaded image bytes are decoded in the images worker (never in the server), once per file and
model; the session keeps the decoded images (at most ``MAX_IMAGE_FILES`` per model) until it ends.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import numpy as np

import vizkit
from dashboards import caches, jobs, work
from dashboards.context import Context
from dashboards.sessions import SessionData
from dashboards.settings import MAX_IMAGE_FILES

IMAGE_TYPES = ("png", "jpg", "jpeg", "bmp", "gif", "webp", "tif", "tiff")


def sample_pool(ctx: Context, sample: str) -> Any:
    """Sample ``sample``'s test images, converted when they belong to another model."""
    batch = caches.sample_images(sample)
    if sample == ctx.sample:
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
    missing = [f for f in files if (ctx.key, f[1]) not in session.images]
    if missing:
        for (_, digest, _), found in zip(missing, work.decoded(ctx, missing)):
            session.images[(ctx.key, digest)] = found
        while len(session.images) > 2 * MAX_IMAGE_FILES:
            session.images.popitem(last=False)
    batches = []
    for name, digest, _ in files:
        found = session.images[(ctx.key, digest)]
        if isinstance(found, str):
            refused.append(f"{name}: {found}")
        else:
            batches.append(found)
    pool_key = jobs.make_key(ctx.key, "upload", tuple(d for _, d, _ in files))
    if not batches:
        return None, pool_key, refused
    caches.registry().hold(session, [pool_key])
    first = batches[0]
    batch = vizkit.ImageBatch(
        array=np.concatenate([b.array for b in batches]),
        originals=tuple(o for b in batches for o in b.originals),
        names=tuple(n for b in batches for n in b.names),
        value_range=first.value_range,
    )
    return batch, pool_key, refused
