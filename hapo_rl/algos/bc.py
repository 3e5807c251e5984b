"""Behaviour cloning: maximise the policy's log-likelihood of teacher actions."""

from __future__ import annotations

import numpy as np
import torch as th
from stable_baselines3.common.policies import ActorCriticPolicy

from hapo_rl.rollout import Episode


def clone(
    policy: ActorCriticPolicy,
    episodes: list[Episode],
    epochs: int,
    batch_size: int,
    rng: np.random.Generator,
) -> float:
    """``epochs`` passes of minibatch cross-entropy (negative log-likelihood) on the episodes'
    steps with the policy's own optimiser; returns the last epoch's mean loss."""
    obs = th.as_tensor(np.concatenate([e.obs for e in episodes]))
    actions = th.as_tensor(np.concatenate([e.actions for e in episodes]))
    policy.set_training_mode(True)
    mean_loss = float("nan")
    for _ in range(epochs):
        perm = th.as_tensor(rng.permutation(len(obs)))
        losses = []
        for start in range(0, len(obs), batch_size):
            mb = perm[start : start + batch_size]
            loss = -policy.get_distribution(obs[mb]).log_prob(actions[mb]).mean()
            policy.optimizer.zero_grad()
            loss.backward()
            policy.optimizer.step()
            losses.append(loss.item())
        mean_loss = float(np.mean(losses))
    return mean_loss
