"""AdamW, the same update as ``torch.optim.AdamW``, without its 1.5-2.5 s first call.

Every ``torch.optim`` optimizer imports ``torch._dynamo`` on its first ``zero_grad`` or
``step`` (the methods are wrapped in ``torch._disable_dynamo``). On a 2-core laptop that
import takes 1.5-2.5 s, which a user who presses Train in a freshly started trainer (or
runs ``napari-unet train``) waits for before the first preview. This is AdamW
(Loshchilov & Hutter 2019: Adam with decoupled weight decay) on ``torch._foreach`` ops,
with torch.optim.AdamW's defaults; ``tests/test_optim.py`` checks that both give the same
parameters step for step.
"""

from __future__ import annotations

import math

import torch


class AdamW:
    """AdamW over one group of parameters; ``param_groups[0]["lr"]`` may change between steps.

    params: the parameters to optimise (those with ``requires_grad``); a parameter
    without a gradient at a step is left alone, and its moment estimates do not age.
    """

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 1e-2):
        self.params = [p for p in params if p.requires_grad]
        self.param_groups = [{"params": self.params, "lr": lr, "betas": betas, "eps": eps,
                              "weight_decay": weight_decay}]
        self.steps = [0] * len(self.params)
        self.exp_avg = [torch.zeros_like(p, memory_format=torch.preserve_format) for p in self.params]
        self.exp_avg_sq = [torch.zeros_like(p, memory_format=torch.preserve_format) for p in self.params]

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.params:
            if set_to_none:
                p.grad = None
            elif p.grad is not None:
                p.grad.zero_()

    @torch.no_grad()
    def step(self) -> None:
        group = self.param_groups[0]
        lr, (beta1, beta2), eps, decay = group["lr"], group["betas"], group["eps"], group["weight_decay"]
        live = [i for i, p in enumerate(self.params) if p.grad is not None]
        # a parameter that had no gradient at some steps is behind the others: its own bias correction
        for count in sorted({self.steps[i] + 1 for i in live}):
            idx = [i for i in live if self.steps[i] + 1 == count]
            self._update([self.params[i] for i in idx], [self.exp_avg[i] for i in idx],
                         [self.exp_avg_sq[i] for i in idx], count, lr, beta1, beta2, eps, decay)
        for i in live:
            self.steps[i] += 1

    @staticmethod
    def _update(params, exp_avg, exp_avg_sq, t, lr, beta1, beta2, eps, decay) -> None:
        grads = [p.grad for p in params]
        torch._foreach_mul_(params, 1 - lr * decay)  # decoupled weight decay
        torch._foreach_lerp_(exp_avg, grads, 1 - beta1)
        torch._foreach_mul_(exp_avg_sq, beta2)
        torch._foreach_addcmul_(exp_avg_sq, grads, grads, 1 - beta2)
        denom = torch._foreach_sqrt(exp_avg_sq)
        torch._foreach_div_(denom, math.sqrt(1 - beta2**t))
        torch._foreach_add_(denom, eps)
        torch._foreach_addcdiv_(params, exp_avg, denom, -lr / (1 - beta1**t))
