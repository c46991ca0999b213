"""Group-balanced resampling: each sample drawn with weight 1/|group|, with replacement.

An epoch draws as many samples as the training set holds, so every group is seen equally often
in expectation and an epoch costs what an ERM epoch costs. The loss is the plain mean.
"""

from __future__ import annotations

from fake2real.lazy import lazy_module
from fake2real.train.methods.base import Method, register

torch = lazy_module("torch")  # imported at first use: a config reads the declarations here without torch


@register
class Resample(Method):
    name = "resample"
    uses_groups = True

    def sample_weights(self) -> torch.Tensor:
        """Per-sample weight 1/|group of the sample|."""
        counts = torch.as_tensor(self.train_group_counts, dtype=torch.float64)
        return 1.0 / counts[torch.as_tensor(self.train_groups)]

    def epoch_indices(self, epoch, generator):
        weights = self.sample_weights()
        return torch.multinomial(weights, len(weights), replacement=True, generator=generator)

    def loss(self, batch, reducer):
        return batch.per_sample_loss.mean()
