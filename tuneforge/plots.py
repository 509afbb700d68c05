"""The loss-curve PNG written into the run folder at the end of training."""

from __future__ import annotations

from pathlib import Path


def plot_loss(log_history: list[dict], out: Path) -> Path | None:
    train = [(e["step"], e["loss"]) for e in log_history if "loss" in e and "step" in e]
    evals = [(e["step"], e["eval_loss"]) for e in log_history if "eval_loss" in e and "step" in e]
    # RL stages (grpo) also log the mean reward; it goes on a second axis
    rewards = [(e["step"], e["reward"]) for e in log_history if e.get("reward") is not None and "step" in e]
    if not train and not evals:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    if train:
        ax.plot(*zip(*train, strict=True), label="train loss")
    if evals:
        ax.plot(*zip(*evals, strict=True), marker="o", label="eval loss")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left")
    if rewards:
        ax2 = ax.twinx()
        ax2.plot(*zip(*rewards, strict=True), color="tab:green", label="mean reward")
        ax2.set_ylabel("reward")
        ax2.legend(loc="upper right")
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)
    return out
