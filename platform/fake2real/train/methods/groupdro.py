"""Online GroupDRO (Sagawa et al., 2020), always robust (the reference needed ``--robust``).

Per step: ``q_g ← q_g · exp(η · (loss_g + C / sqrt(n_g)))``, normalized; loss = Σ_g q_g · loss_g,
where loss_g is the mean loss of group g in the *global* batch (summed over data-parallel
workers, so every worker keeps the same q) and n_g is g's training-set size.

Only groups with training samples exist (the reference's ``n_groups = len(np.unique(groups))``):
q starts uniform over them and an empty group (e.g. SpuCo's empty (y, b) cells) keeps q = 0 and
no adjustment. A present group missing from a batch has loss_g = 0 in that step, as in the
reference (``count + (count == 0)``).
"""

from __future__ import annotations

from fake2real.lazy import lazy_module
from fake2real.train.methods.base import Hyperparameter, Method, register

torch = lazy_module("torch")  # imported at first use: a config reads the declarations here without torch


@register
class GroupDRO(Method):
    name = "groupdro"
    uses_groups = True
    hyperparameters = (
        Hyperparameter("eta", 0.01, ("loguniform", 1e-4, 1.0)),
        Hyperparameter("group_adjustment", 0.0, ("choice", [0.0, 1.0, 2.0, 3.0, 4.0, 5.0])),
    )

    def __init__(self, params, train_groups, num_groups):
        super().__init__(params, train_groups, num_groups)
        counts = torch.as_tensor(self.train_group_counts, dtype=torch.float64)
        self.present = counts > 0
        self.q = self.present.double() / self.present.sum()
        adjustment = self.params["group_adjustment"] / torch.sqrt(counts.clamp(min=1.0))
        self.adjustment = torch.where(self.present, adjustment, torch.zeros_like(adjustment))

    def loss(self, batch, reducer):
        per_sample_loss, groups = batch.per_sample_loss, batch.groups
        num_groups = self.q.numel()
        local_sum = torch.zeros(num_groups, dtype=per_sample_loss.dtype, device=per_sample_loss.device)
        local_sum = local_sum.scatter_add(0, groups, per_sample_loss)
        local_count = torch.bincount(groups, minlength=num_groups).to(per_sample_loss.dtype)
        global_sum = reducer.sum(local_sum.detach().clone())
        global_count = reducer.sum(local_count.clone()).clamp(min=1.0)

        group_loss = (global_sum / global_count).double().cpu()
        self.q = torch.where(self.present, self.q * torch.exp(self.params["eta"] * (group_loss + self.adjustment)), 0.0)
        self.q = self.q / self.q.sum()

        q = self.q.to(per_sample_loss.device, per_sample_loss.dtype)
        # DDP averages gradients over workers: scale so the average is Σ_g q_g · global loss_g.
        return reducer.world_size * (q * local_sum / global_count).sum()

    def state_dict(self):
        return {"q": self.q.clone()}

    def load_state_dict(self, state):
        self.q = state["q"].clone()
