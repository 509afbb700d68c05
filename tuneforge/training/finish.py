"""Step 8 of a run: the metrics of the whole run, the comparison answers after training, the loss
plot, and the run folder's artifacts and manifest (`tuneforge.artifacts.save.save_run`, the manifest
last: its presence marks a finished run)."""

from __future__ import annotations

from pathlib import Path

from tuneforge.training.prepare import Prepared


def run_metrics(p: Prepared, trainer, result) -> dict:
    """The Trainer's train metrics, the final evaluation, and where the loss ended."""
    from tuneforge.artifacts.save import whole_run_train_loss
    from tuneforge.eval import during

    cfg = p.config
    metrics = dict(result.metrics)
    whole = whole_run_train_loss(trainer.state.log_history)
    if whole is not None:  # the Trainer's own train_loss covers only the steps since the last resume
        metrics["train_loss"] = whole
    if p.data.eval is not None or cfg.eval.tasks:
        metrics.update(during.manifest_metrics(trainer.evaluate(), cfg.eval.tasks))
    metrics["global_step"] = trainer.state.global_step
    metrics["num_input_tokens_seen"] = trainer.state.num_input_tokens_seen
    losses = [e["loss"] for e in trainer.state.log_history if "loss" in e]
    if losses:  # train_loss is the mean over the run; this is where it ended
        metrics["last_train_loss"] = losses[-1]
    return metrics


def save(p: Prepared, trainer, metrics: dict) -> Path:
    """Write the run folder's artifacts and manifest; returns the run folder."""
    import torch

    from tuneforge.artifacts.save import save_run
    from tuneforge.eval import during
    from tuneforge.models.load import resolve_model_source

    cfg, s = p.config, p.data.stats
    trainable, total = p.parameters
    manifest = {
        "base_model": {"name_or_path": cfg.model.name_or_path, "resolved": resolve_model_source(cfg.model)},
        "stage": cfg.stage.name,
        "method": cfg.method.name,
        "template": p.template.name if p.template else None,
        "data": {
            "fingerprint": p.data.fingerprint,
            "samples": s.samples,
            "tokens": s.tokens,
            "trained_share": round(s.trained_share, 4),
            "dropped": s.dropped,
        },
        "parameters": {"trainable": trainable, "total": total},
        "cpu_threads": torch.get_num_threads(),  # PyTorch's, as tuneforge.threads chose them
        # the processes that trained (a multi-process test asserts it: a rank that ran alone says 1)
        "world_size": trainer.args.world_size,
        "engine": cfg.scale.engine,
        "metrics": metrics,
        "best_checkpoint": during.best_checkpoint(trainer),
        "config": cfg.model_dump(mode="json"),
    }
    if p.compare_rows:
        from tuneforge.inference.compare import answer_all, report

        after = answer_all(
            trainer.model, p.tokenizer, p.compare_rows, cfg.compare, p.chat_template, p.stop_tokens
        )
        manifest["compare"] = report(p.compare_rows, p.answers_before, after, p.run_dir, cfg.compare)
    if cfg.output.plot_loss:
        from tuneforge.eval.plots import plot_loss
        from tuneforge.training.metrics_log import read_metrics

        plot_loss(read_metrics(p.run_dir) or trainer.state.log_history, p.run_dir / "loss.png")
    save_run(
        p.run_dir, trainer.model, p.tokenizer, p.chat_template, p.stop_tokens, manifest, method_cfg=cfg.method
    )
    return p.run_dir
