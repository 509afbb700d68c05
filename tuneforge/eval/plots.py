"""The loss-curve PNG written into the run folder at the end of training."""

from __future__ import annotations

from pathlib import Path


def plot_loss(log_history: list[dict], out: Path) -> Path | None:
    train = [(e["step"], e["loss"]) for e in log_history if "loss" in e and "step" in e]
    evals = [(e["step"], e["eval_loss"]) for e in log_history if "eval_loss" in e and "step" in e]
    # RL stages (grpo, ppo) also log the mean reward; it goes on a second axis
    rewards = [(e["step"], e["reward"]) for e in log_history if e.get("reward") is not None and "step" in e]
    if not train and not evals:
        return None
    from tuneforge.extras import available

    if not available("loss.png", "matplotlib"):
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # preference stages also log reward margins and accuracies: a second panel shows them
    extra = [
        k
        for k in ("rewards/margins", "rewards/accuracies", "margin", "accuracy")
        if any(k in e for e in log_history)
    ]
    fig, axes = plt.subplots(1, 2 if extra else 1, figsize=(12 if extra else 7, 4), dpi=100)
    ax = axes[0] if extra else axes
    if extra:
        for key in extra:
            points = [(e["step"], e[key]) for e in log_history if key in e and "step" in e]
            axes[1].plot(*zip(*points, strict=True), label=key)
        axes[1].set_xlabel("step")
        axes[1].grid(alpha=0.3)
        axes[1].legend()
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
