"""Model selection within a stage: the best candidate so far and its weights.

A candidate is a model evaluated on validation (each epoch after any warm-up; the starting model
only with ``keep_start``). It replaces the best when its selection key (``train/metrics.
selection_key``: worst-group accuracy, then balanced accuracy, then loss) improves on the best's;
the first of equals wins. The best's record and weights go into every checkpoint, so a resumed
stage selects among all its epochs, not only those after the restart.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fake2real.track.names import VAL_WGA
from fake2real.train.metrics import improves, selection_key

if TYPE_CHECKING:
    import torch

SELECTION_METRIC = VAL_WGA


class Selection:
    def __init__(self, best: dict, state: dict):
        # best["key"] is the selection key of the best candidate so far (None: none yet).
        self.best = best
        self.state = state  # the best candidate's state dict (the checkpoint's best_model.pt)

    @classmethod
    def none_yet(cls, model: torch.nn.Module) -> Selection:
        """No candidate so far; the weights are the starting model's until one comes."""
        return cls({"epoch": -1, SELECTION_METRIC: -1.0, "key": None}, {k: v.detach().clone() for k, v in model.state_dict().items()})

    def consider(self, metrics: dict, epoch: int, model: torch.nn.Module) -> None:
        """Keep the model if it beats the best so far (the first of equals wins)."""
        key = list(selection_key(metrics))
        if improves(key, self.best.get("key")):
            self.best = {"epoch": epoch, SELECTION_METRIC: metrics[SELECTION_METRIC], "key": key}
            self.state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
