"""How good a trained generator is, measured before any claim uses it (docs/results/fashion.md).

Two small CNNs are trained on real held-apart images — the generator's own training images, never
the benchmark's — one to read the class Y, one to read the bias B, each on 80 % of them and
checked on the other 20 % (``quality/real/…``: what the readers can do on real images). Then the
generator makes ``per_group`` images of every group and the readers judge them, per group
(``quality/generated/{y,b}_accuracy/group/y{Y}_b{B}``): an image of group (y, b) that the Y
reader calls y and the B reader calls b renders its group. Last, the G-leakage probe
(``train/probe.py``) on the Y reader's features: real (the 20 %) vs generated, balanced within
every group; 0.5 = the reader's features cannot tell them apart.
"""

from __future__ import annotations

import numpy as np

from fake2real.data.table import group_name

READER_BATCH = 128


def _fit_reader(images, labels, num_classes: int, seed: int, epochs: int):
    """A small CNN trained to predict ``labels`` from uint8 ``images`` (Adam, a few epochs)."""
    import torch
    import torch.nn.functional as F

    from fake2real.train.models import build_model

    torch.manual_seed(seed)
    model = build_model("small_cnn", num_classes)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    order = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(epochs):
        for batch in torch.randperm(len(images), generator=order).split(READER_BATCH):
            loss = F.cross_entropy(model(images[batch]), labels[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return model.eval()


def _predict(model, images):
    import torch

    with torch.no_grad():
        features = torch.cat([model.features(chunk) for chunk in images.split(512)])
        return model.fc(features).argmax(1).numpy(), features.numpy()


def measure_quality(pipeline_folder: str, table: str, per_group: int, steps: int, eta: float, seed: int, reader_epochs: int = 8,
                    device: str = "cpu") -> dict:
    """The generator at ``pipeline_folder`` (a local folder) judged against the real images of ``table``'s train split."""
    import torch

    from fake2real.data.table import read_info
    from fake2real.generate.group_pipeline import load_pipeline
    from fake2real.train.probe import g_leakage_auroc
    from fake2real.train.tensors import load_split

    info = read_info(table)
    real = load_split(table, "train", info.num_biases)
    y, b = real.labels, real.groups % info.num_biases
    held = torch.rand(len(real), generator=torch.Generator().manual_seed(seed)) < 0.2
    y_reader = _fit_reader(real.images[~held], y[~held], info.num_classes, seed, reader_epochs)
    b_reader = _fit_reader(real.images[~held], b[~held], info.num_biases, seed + 1, reader_epochs)
    real_y, real_features = _predict(y_reader, real.images[held])
    real_b, _ = _predict(b_reader, real.images[held])
    metrics = {"quality/real/y_accuracy": float((real_y == y[held].numpy()).mean()),
               "quality/real/b_accuracy": float((real_b == b[held].numpy()).mean())}

    pipe = load_pipeline(pipeline_folder, device, "generator")
    num_groups = info.num_classes * info.num_biases
    labels = [g for g in range(num_groups) for _ in range(per_group)]
    made = []
    for start in range(0, len(labels), 64):
        chunk = labels[start:start + 64]
        generators = [torch.Generator().manual_seed(seed * 1_000_003 + start + i) for i in range(len(chunk))]
        made.append(pipe(chunk, generators, num_inference_steps=steps, eta=eta))
    generated = torch.from_numpy(np.concatenate(made)).permute(0, 3, 1, 2).contiguous()
    gen_groups = np.array(labels)
    gen_y, gen_features = _predict(y_reader, generated)
    gen_b, _ = _predict(b_reader, generated)
    for g in range(num_groups):
        yy, bb = divmod(g, info.num_biases)
        members = gen_groups == g
        metrics[f"quality/generated/y_accuracy/group/{group_name(yy, bb)}"] = float((gen_y[members] == yy).mean())
        metrics[f"quality/generated/b_accuracy/group/{group_name(yy, bb)}"] = float((gen_b[members] == bb).mean())
    metrics["quality/generated/y_accuracy"] = float((gen_y == gen_groups // info.num_biases).mean())
    metrics["quality/generated/b_accuracy"] = float((gen_b == gen_groups % info.num_biases).mean())
    metrics["quality/g_leakage_auroc"] = g_leakage_auroc(real_features, real.groups[held].numpy(), gen_features, gen_groups, seed)
    return metrics
