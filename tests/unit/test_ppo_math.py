"""The arithmetic of `ppo` (tuneforge.stages._ppo_math) on numbers small enough to check by hand."""

from __future__ import annotations

import math

import pytest
import torch

from tuneforge.stages import _ppo_math as F


def test_response_mask_ends_at_the_first_stop_token():
    responses = torch.tensor([[5, 2, 7, 2], [5, 6, 7, 8], [2, 2, 2, 2]])
    assert F.response_mask(responses, [2]).tolist() == [
        [True, True, False, False],
        [True, True, True, True],  # cut at response_length: every token counts
        [True, False, False, False],
    ]
    assert F.response_mask(responses, []).all()


def test_token_rewards_put_the_score_on_the_last_token():
    mask = torch.tensor([[True, True, False], [True, True, True]])
    kl = torch.tensor([[0.5, 1.0, 9.0], [0.0, 0.0, 2.0]])
    rewards = F.token_rewards(torch.tensor([1.0, 2.0]), kl, mask, kl_coef=0.1)
    assert torch.allclose(rewards, torch.tensor([[-0.05, 0.9, 0.0], [0.0, 0.0, 1.8]]))


def test_gae_by_hand():
    rewards = torch.tensor([[0.0, 0.0, 1.0]])
    values = torch.tensor([[0.5, 0.5, 0.5]])
    mask = torch.ones_like(rewards, dtype=torch.bool)
    adv, ret = F.gae(rewards, values, mask, gamma=1.0, lam=1.0)
    assert torch.allclose(adv, torch.tensor([[0.5, 0.5, 0.5]])) and torch.allclose(ret, torch.ones(1, 3))
    adv, _ = F.gae(rewards, values, mask, gamma=1.0, lam=0.5)  # delta = (0, 0, 0.5)
    assert torch.allclose(adv, torch.tensor([[0.125, 0.25, 0.5]]))
    # past the response's end values and rewards do not count
    short = torch.tensor([[True, True, False]])
    adv, ret = F.gae(torch.tensor([[0.0, 1.0, 5.0]]), torch.tensor([[0.5, 0.5, 7.0]]), short, 0.9, 1.0)
    assert torch.allclose(adv, torch.tensor([[0.9 * 1.0 - 0.5, 0.5, 0.0]])) and ret[0, 2] == 0


def test_kl_estimators():
    logprobs, ref = torch.tensor([math.log(0.5)]), torch.tensor([math.log(0.25)])
    assert F.kl_estimate(logprobs, ref, "k1").item() == pytest.approx(math.log(2))
    assert F.kl_estimate(logprobs, ref, "k3").item() == pytest.approx(0.5 - 1 + math.log(2))
    assert F.kl_estimate(ref, ref, "k3").item() == 0.0


def test_masked_whiten():
    x = torch.tensor([[1.0, 2.0, 3.0, 100.0]])
    mask = torch.tensor([[True, True, True, False]])
    w = F.masked_whiten(x, mask)
    assert torch.allclose(w[mask], torch.tensor([-1.0, 0.0, 1.0]), atol=1e-6)
    assert torch.allclose(
        F.masked_whiten(x, mask, shift_mean=False)[mask], torch.tensor([1.0, 2.0, 3.0]), atol=1e-6
    )


def test_clipped_losses_by_hand():
    mask = torch.ones(1, 2, dtype=torch.bool)
    batch = {
        "mask": mask,
        "advantages": torch.tensor([[1.0, -1.0]]),
        "old_logprobs": torch.zeros(1, 2),
        "old_values": torch.ones(1, 2),
        "returns": torch.zeros(1, 2),
    }
    logprobs = torch.full((1, 2), math.log(1.5))  # ratio 1.5 on both tokens
    policy, value, clipfrac = F.clipped_losses(logprobs, torch.full((1, 2), 2.0), batch, 0.2, 0.2)
    # token 1: max(-1.5, -1.2) = -1.2 (clipped); token 2: max(1.5, 1.2) = 1.5
    assert policy.item() == pytest.approx((-1.2 + 1.5) / 2) and clipfrac.item() == 0.5
    # value 2, old value 1, return 0: max((2-0)^2, (1.2-0)^2) = 4, halved
    assert value.item() == pytest.approx(2.0)
