"""``engine="ray"``: the same chunks on a Ray Data actor pool, written to the same store.

Each chunk still to do becomes one row of a ``ray.data`` dataset; ``map_batches`` sends the rows
to a pool of actors (``concurrency=workers``), each of which loads the model once (from its file,
a sample name, or a copy vizkit saved into the store), turns on TensorFlow memory growth for its
GPUs, and runs :class:`~vizkit.scanning.compute.Scanner` exactly as the local engine does. The
driver receives each chunk's result as it completes and writes it with the local writer, so both
engines produce the same files and resume from each other.

Files are decoded on the actors (a cluster needs the images on a path every node can read: a
shared filesystem); array sources ship their chunks from the driver.

Ray is optional: ``pip install 'vizkit[ray]'`` (``ray[data]``). ``ray.init`` honours
``RAY_ADDRESS``, so the same call runs on a laptop (a local instance is started) or on an
existing cluster.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from vizkit.errors import InputError
from vizkit.scanning.sources import FileSource


def _require_ray() -> Any:
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise InputError(
            "engine='ray' needs Ray Data: pip install 'vizkit[ray]' (or 'ray[data]'), or use "
            "engine='local'"
        ) from None
    return ray


def model_spec(resolved: Any, model: Any, root: Path) -> dict[str, Any]:
    """How an actor gets the model: a file path, a sample name, or a copy saved in the store
    (vizkit wrote that file, so it loads in safe mode)."""
    if getattr(resolved, "sample", None):
        return {"sample": resolved.sample}
    if getattr(resolved, "path", None):
        return {"path": os.path.abspath(resolved.path), "trust": False}
    path = root / "model.keras"
    model.save(path)
    return {"path": str(path.resolve()), "trust": False}


def _load_model(spec: dict[str, Any], trust: bool) -> Any:
    if "sample" in spec:
        from vizkit.samples import sample_model

        return sample_model(spec["sample"])
    from vizkit.loading import load_model

    return load_model(spec["path"], trust=trust)


class ChunkWorker:
    """A Ray Data actor: loads the model once, then computes one chunk per row."""

    def __init__(self, config: bytes) -> None:
        from vizkit._tf import tf

        for gpu in tf.config.list_physical_devices("GPU"):
            try:
                tf.config.experimental.set_memory_growth(gpu, True)
            except (RuntimeError, ValueError):  # already initialized
                pass
        from vizkit.scanning.compute import Scanner

        settings = pickle.loads(config)  # written by this scan's driver, not untrusted data
        model = _load_model(settings["model"], settings["trust"])
        self.scanner = Scanner(model, settings["specs"], settings["settings"])
        self.source = settings["source"]

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        out = []
        for task in batch["task"]:
            job = pickle.loads(task)
            chunk = job["chunk"]
            if chunk is None:
                s = self.scanner.settings
                chunk = self.source.load(job["plan"], s.input_shape, s.value_range)
            result = self.scanner.compute(
                chunk, job["todo"], need_base=job["need_base"], need_images=job["need_images"]
            )
            out.append(pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL))
        return {"result": np.array(out, dtype=object)}


def _runtime_env() -> dict[str, Any]:
    """Environment for actors of a local instance: this vizkit on the path, the samples dir."""
    env = {}
    if os.environ.get("VIZKIT_SAMPLES_DIR"):
        env["VIZKIT_SAMPLES_DIR"] = os.environ["VIZKIT_SAMPLES_DIR"]
    import vizkit

    here = str(Path(vizkit.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(
        [here, *[p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]]
    )
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2"))
    return {"env_vars": env}


def run_ray(
    job: Any,
    plans: list[Any],
    resolved: Any,
    model: Any,
    progress: Any,
    workers: int | None,
    options: dict[str, Any],
) -> None:
    """Compute the chunks of ``plans`` that still have work on a Ray actor pool and store them
    with ``job``'s writer (see the module docstring)."""
    ray = _require_ray()
    from vizkit.scanning.run import _progress_sink

    options = dict(options)
    num_cpus = float(options.pop("num_cpus", 1))
    num_gpus = float(options.pop("num_gpus", 0))
    address = options.pop("address", None)
    if not ray.is_initialized():
        init = {"ignore_reinit_error": True, "log_to_driver": False, **options}
        if address is None and not os.environ.get("RAY_ADDRESS"):
            init["runtime_env"] = _runtime_env()
        ray.init(address=address, **init)
    import logging

    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False  # vizkit's own bar reports progress
    for name in ("ray.data", "ray.data._internal"):
        logging.getLogger(name).setLevel(logging.WARNING)
    work, initial = job.pending(plans)
    update, close = _progress_sink(progress, job.source.total, initial)
    try:
        if not work:
            return
        files = isinstance(job.source, FileSource)
        shape, vr = job.settings.input_shape, job.settings.value_range
        tasks = []
        for plan in work:
            todo, need_base, need_images = job.todo(plan.fingerprint)
            chunk = None if files else job.source.load(plan, shape, vr)
            tasks.append(
                {
                    "task": pickle.dumps(
                        {
                            "plan": plan,
                            "chunk": chunk,
                            "todo": todo,
                            "need_base": need_base,
                            "need_images": need_images,
                        }
                    )
                }
            )
        config = pickle.dumps(
            {
                "model": model_spec(resolved, model, job.writer.root),
                "trust": job.trust,
                "specs": job.specs,
                "settings": job.settings,
                "source": job.source if files else None,
            }
        )
        if workers is None:
            available = ray.cluster_resources().get("CPU", 1.0)
            workers = max(1, int(available // max(num_cpus, 1e-9)))
        workers = max(1, min(int(workers), len(tasks)))
        dataset = ray.data.from_items(tasks, override_num_blocks=len(tasks))
        results = dataset.map_batches(
            ChunkWorker,
            fn_constructor_args=(config,),
            batch_size=1,
            batch_format="numpy",
            concurrency=workers,
            num_cpus=num_cpus,
            num_gpus=num_gpus,
        )
        for row in results.iter_rows():
            output = pickle.loads(row["result"])  # produced by this scan's own actors
            job.writer.log(
                "started",
                chunk=output.index,
                fingerprint=output.fingerprint,
                methods=sorted(output.methods),
                engine="ray",
            )
            job.writer.write_chunk(output, job.base_key, job.images_key)
            job.plan_record.append({"fingerprint": output.fingerprint})
            update(output.count)
    finally:
        close()
