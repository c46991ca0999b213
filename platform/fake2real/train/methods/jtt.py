"""Just Train Twice (Liu et al., 2021): upweight the errors of a short ERM run, train again.

Phase 1 trains ERM for ``identification_epochs`` (T) epochs; the samples it then misclassifies
form the error set. The model is re-initialized and phase 2 trains on the training set with
every error-set sample repeated ``upweight`` (λ) times per epoch (the paper's upsampling; an
epoch then holds N + (λ−1)·|errors| samples). Needs no group labels; model selection (by
validation worst-group accuracy, as every method here) considers phase-2 epochs only.
"""

from __future__ import annotations

import numpy as np

from fake2real.lazy import lazy_module
from fake2real.train.methods.base import Hyperparameter, Method, register

torch = lazy_module("torch")  # imported at first use: a config reads the declarations here without torch


@register
class JTT(Method):
    name = "jtt"
    hyperparameters = (
        Hyperparameter("identification_epochs", 1, ("int", 1, 20)),
        Hyperparameter("upweight", 20, ("int", 1, 100)),
    )

    def __init__(self, params, train_groups, num_groups):
        super().__init__(params, train_groups, num_groups)
        self.errors: torch.Tensor | None = None  # bool (N,), set after the warm-up

    @property
    def warmup_epochs(self) -> int:
        return self.params["identification_epochs"]

    def after_warmup(self, correct: np.ndarray) -> None:
        self.errors = torch.as_tensor(~np.asarray(correct, dtype=bool))

    def epoch_indices(self, epoch, generator):
        n = len(self.train_groups)
        if self.errors is None:  # phase 1: plain ERM epochs
            return torch.randperm(n, generator=generator)
        extra = torch.nonzero(self.errors).flatten().repeat(self.params["upweight"] - 1)
        upsampled = torch.cat([torch.arange(n), extra])
        return upsampled[torch.randperm(len(upsampled), generator=generator)]

    def loss(self, batch, reducer):
        return batch.per_sample_loss.mean()

    def state_dict(self):
        return {} if self.errors is None else {"errors": self.errors.clone()}

    def load_state_dict(self, state):
        self.errors = state["errors"].clone() if "errors" in state else None
