"""ERM: the mean cross-entropy over the batch."""

from fake2real.train.methods.base import Method, register


@register
class ERM(Method):
    name = "erm"

    def loss(self, batch, reducer):
        return batch.per_sample_loss.mean()
