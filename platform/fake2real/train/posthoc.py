"""After an experiment's last stage: post-hoc methods (DFR), synthetic-test metrics, G-leakage probe.

Runs as one Ray task (on a GPU when training used one) on the selected model. Penultimate
features of the real validation/test splits and of the held-out synthetic test set are computed
once per (checkpoint, table, split) and cached beside the stages (``<runs>/features/``), so
re-running DFR or the probe costs seconds.

Metrics it returns (MLflow names): ``synthetic_test/{worst_group_accuracy, balanced_accuracy,
overall_accuracy, group/y{Y}_b{B}/accuracy}``, ``probe/g_leakage_auroc``; for a post-hoc method
the real ``val/…`` and ``test/…`` metrics of its refit head replace the base model's, plus the
method's own (e.g. ``dfr/C``).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fake2real import identity
from fake2real.data.storage import Location, get_bytes, is_file, put_bytes, relative_to
from fake2real.data.table import group_name, read_info
from fake2real.errors import DataError
from fake2real.lazy import lazy_module
from fake2real.train.methods import get_method
from fake2real.train.metrics import evaluate_predictions
from fake2real.train.probe import g_leakage_auroc
from fake2real.train.spec import BEST_MODEL

# Imported at first use, as the model code below is: an experiment names its post-hoc step
# (``PosthocSpec``) without torch, e.g. in a sweep's dry run.
torch = lazy_module("torch")


@dataclass(frozen=True)
class PosthocSpec:
    checkpoint_uri: str
    model: str
    eval_table: str
    synthetic_test_table: str | None
    method: str
    seed: int
    input_size: int | None = None  # train.input_size of the model
    workspace: str | None = None  # output_dir: its checkpoint and tables name the cached features relative to it


def load_selected_model(checkpoint_uri: str, model_name: str, num_classes: int, owner: str, input_size: int | None = None) -> torch.nn.Module:
    """The model a stage selected (``best_model.pt`` of its checkpoint, local or a URI), in eval
    mode; ``owner`` names who needs it in the error when it is missing."""
    import ray.train

    from fake2real.train.models import build_model

    model = build_model(model_name, num_classes, input_size=input_size)
    with ray.train.Checkpoint(checkpoint_uri).as_directory() as directory:
        path = Path(directory) / BEST_MODEL
        if not path.is_file():
            raise DataError(f"{owner}: no finished base model at {checkpoint_uri} ({BEST_MODEL} is missing)")
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return model.eval()


def extract(model, table: str, split: str, num_biases: int, device, batch_size: int = 512) -> dict[str, np.ndarray]:
    from fake2real.train.tensors import load_split

    data = load_split(table, split, num_biases)
    features, logits = [], []
    with torch.no_grad():
        for start in range(0, len(data), batch_size):
            x = model.features(data.images[start : start + batch_size].to(device))
            features.append(x.float().cpu())
            logits.append(model.fc(x).float().cpu())
    return {
        "x": torch.cat(features).numpy(),
        "logits": torch.cat(logits).numpy(),
        "labels": data.labels.numpy(),
        "groups": data.groups.numpy(),
    }


def cached_features(model, spec: PosthocSpec, table: str, split: str, num_biases: int, device, cache: str) -> dict:
    """Features of one (checkpoint, table, split), computed once: a cache file written whole or absent."""
    # Named by locations inside the workspace relative to it: a moved workspace keeps its cache.
    named = [(relative_to(where, spec.workspace) if spec.workspace else None) or where for where in (spec.checkpoint_uri, table)]
    path = Location(cache) / "features" / f"{identity.key('|'.join([*named, split]), length=20)}.npz"
    if is_file(path):
        return dict(np.load(io.BytesIO(get_bytes(path))))
    features = extract(model, table, split, num_biases, device)
    buffer = io.BytesIO()
    np.savez(buffer, **features)
    put_bytes(path, buffer.getvalue())
    return features


def run_posthoc(spec: PosthocSpec, cache: str, use_gpu: bool = False) -> dict:
    info = read_info(spec.eval_table)
    names = [group_name(y, b) for y in range(info.num_classes) for b in range(info.num_biases)]
    device = torch.device("cuda" if use_gpu and torch.cuda.is_available() else "cpu")
    model = load_selected_model(spec.checkpoint_uri, spec.model, info.num_classes, spec.method, spec.input_size).to(device)
    splits = {"val": spec.eval_table, "test": spec.eval_table}
    if spec.synthetic_test_table:
        splits["synthetic_test"] = spec.synthetic_test_table
    features = {
        name: cached_features(model, spec, table, "test" if name == "synthetic_test" else name, info.num_biases, device, cache)
        for name, table in splits.items()
    }
    predict = lambda f: f["logits"].argmax(axis=1)  # noqa: E731
    metrics: dict = {}
    method = get_method(spec.method)
    if method.base_method is not None:
        refit = method.posthoc({s: features[s] for s in ("val", "test")}, spec.seed)
        predict = lambda f: refit["predict"](f["x"])  # noqa: E731
        metrics.update(refit["params"])
        for split in ("val", "test"):
            f = features[split]
            metrics.update(evaluate_predictions(predict(f), f["labels"], f["groups"], names, split))
    if "synthetic_test" in features:
        f = features["synthetic_test"]
        metrics.update(evaluate_predictions(predict(f), f["labels"], f["groups"], names, "synthetic_test"))
        real = features["test"]
        metrics["probe/g_leakage_auroc"] = g_leakage_auroc(real["x"], real["groups"], f["x"], f["groups"], spec.seed)
    return metrics


def run_posthoc_task(spec: PosthocSpec, cache: str, use_gpu: bool) -> dict:
    """``run_posthoc`` as a Ray task with one CPU (and one GPU when training used GPUs)."""
    import ray

    task = ray.remote(num_cpus=1, num_gpus=1 if use_gpu else 0)(run_posthoc)
    return ray.get(task.remote(spec, cache, use_gpu))


