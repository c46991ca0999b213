"""Group reweighting: each sample's loss weighted by 1/|group|, normalized to mean weight 1.

Weight of group g: ``N / (G · n_g)`` for the G groups present in training (N samples), so the
weights average to 1 over the training set and the learning rate means what it means for ERM.
"""

from __future__ import annotations

from fake2real.lazy import lazy_module
from fake2real.train.methods.base import Method, register

torch = lazy_module("torch")  # imported at first use: a config reads the declarations here without torch


@register
class Reweight(Method):
    name = "reweight"
    uses_groups = True

    def __init__(self, params, train_groups, num_groups):
        super().__init__(params, train_groups, num_groups)
        counts = torch.as_tensor(self.train_group_counts, dtype=torch.float64)
        present = counts > 0
        weights = torch.zeros_like(counts)
        weights[present] = counts.sum() / (present.sum() * counts[present])
        self.group_weights = weights

    def loss(self, batch, reducer):
        weights = self.group_weights.to(batch.per_sample_loss.device, batch.per_sample_loss.dtype)[batch.groups]
        return (weights * batch.per_sample_loss).mean()
