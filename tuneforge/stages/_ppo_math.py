"""The arithmetic of `ppo` (used by `tuneforge.stages._ppo_trainer`), pure tensor functions so the unit
tests can check them by hand. Shapes: [batch, response tokens]; ``mask`` is True on the response's
tokens up to and including its first stop token, False after it.

The formulas are those of TRL's former PPOTrainer (Ouyang et al. 2022; Huang et al. 2024, "The N+
implementation details of RLHF with PPO"): the sequence's score is a reward on its last token, every
token pays ``kl_coef`` x its KL estimate to the reference, GAE turns rewards and values into advantages,
and the losses are PPO's clipped surrogate and a clipped value loss.
"""

from __future__ import annotations

import torch


def response_mask(responses: torch.Tensor, stop_ids: list[int]) -> torch.Tensor:
    """True up to and including the first stop token of each row (every token when it has none)."""
    if not stop_ids:
        return torch.ones_like(responses, dtype=torch.bool)
    is_stop = torch.isin(responses, torch.tensor(stop_ids, device=responses.device))
    stops_before = is_stop.long().cumsum(1) - is_stop.long()
    return stops_before == 0


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return (x * mask).sum() / mask.sum().clamp(min=1)


def masked_whiten(x: torch.Tensor, mask: torch.Tensor, shift_mean: bool = True) -> torch.Tensor:
    """(x - mean) / std over the masked entries (unbiased variance); ``shift_mean=False`` keeps the mean."""
    mean = masked_mean(x, mask)
    count = mask.sum()
    var = (((x - mean) ** 2) * mask).sum() / (count - 1).clamp(min=1)
    out = (x - mean) * torch.rsqrt(var + 1e-8)
    return out if shift_mean else out + mean


def kl_estimate(logprobs: torch.Tensor, ref_logprobs: torch.Tensor, estimator: str) -> torch.Tensor:
    """Per-token KL(policy || reference) of the sampled tokens: k1 = log p - log q (unbiased, can be
    negative), k3 = (q/p - 1) - log(q/p) (unbiased, never negative; http://joschu.net/blog/kl-approx.html)."""
    log_ratio = ref_logprobs - logprobs
    return -log_ratio if estimator == "k1" else log_ratio.exp() - 1 - log_ratio


def token_rewards(scores: torch.Tensor, kl: torch.Tensor, mask: torch.Tensor, kl_coef: float) -> torch.Tensor:
    """-kl_coef x KL on every response token, plus the sequence's score on its last token."""
    rewards = -kl_coef * kl * mask
    last = mask.sum(1).clamp(min=1) - 1
    rewards[torch.arange(len(scores), device=rewards.device), last] += scores
    return rewards


def gae(
    rewards: torch.Tensor, values: torch.Tensor, mask: torch.Tensor, gamma: float, lam: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """(advantages, returns) by generalized advantage estimation; past a response's end both are 0."""
    values = values * mask
    rewards = rewards * mask
    advantages = torch.zeros_like(rewards)
    running = torch.zeros_like(rewards[:, 0])
    for t in reversed(range(rewards.shape[1])):
        next_value = values[:, t + 1] if t + 1 < rewards.shape[1] else torch.zeros_like(running)
        delta = rewards[:, t] + gamma * next_value - values[:, t]
        running = delta + gamma * lam * running
        advantages[:, t] = running
    return advantages * mask, (advantages + values) * mask


def clipped_losses(
    logprobs: torch.Tensor,
    values: torch.Tensor,
    batch: dict[str, torch.Tensor],
    cliprange: float,
    cliprange_value: float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(policy loss, value loss, share of tokens whose ratio was clipped), token means over ``mask``.

    ``batch`` holds the rollout's ``old_logprobs``, ``old_values``, ``advantages``, ``returns`` and ``mask``.
    """
    mask = batch["mask"]
    advantages = batch["advantages"]
    ratio = torch.exp(logprobs - batch["old_logprobs"])
    unclipped = -advantages * ratio
    clipped = -advantages * torch.clamp(ratio, 1.0 - cliprange, 1.0 + cliprange)
    policy_loss = masked_mean(torch.maximum(unclipped, clipped), mask)
    clipfrac = masked_mean((clipped > unclipped).float(), mask)
    old_values = batch["old_values"]
    values_clipped = old_values + torch.clamp(values - old_values, -cliprange_value, cliprange_value)
    value_losses = torch.maximum((values - batch["returns"]) ** 2, (values_clipped - batch["returns"]) ** 2)
    value_loss = 0.5 * masked_mean(value_losses, mask)
    return policy_loss, value_loss, clipfrac
