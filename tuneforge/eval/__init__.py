"""Evaluation: `tuneforge eval MODEL_OR_RUN --tasks ...` and the `eval:` section of a training config.

tasks/       the task registry (perplexity, generate, choice, judge, lm_eval): one file per type,
             each with its pydantic Config (selected by `name`) and run(cfg, target) -> TaskResult
target.py    what a task evaluates: a loaded model + tokenizer + the chat template to prompt with
loglik.py    log-likelihood of continuations (multiple choice) and of rendered samples (perplexity)
runner.py    `tuneforge eval`: load the model or run (before and after), run each task, write reports
report.py    eval.json, eval.md and the PNG plots
during.py    the same tasks at every evaluation of a training run (numbers to log, TensorBoard,
             manifest; HF metric_for_best_model can pick the best checkpoint by them)
"""
