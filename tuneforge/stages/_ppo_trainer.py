"""The trainer a `ppo` run uses: an HF Trainer whose steps are PPO updates, with tuneforge's trainer
behaviour (`tuneforge.training.trainer.TuneforgeMixin`: the method's optimizer, loss guards, atomic checkpoints).

A rollout (`_rollout`, no gradients) takes a batch of prompts, already rendered to ids by the data
pipeline: the policy samples a response to each, the rewards score it (`tuneforge.rewards.score`), and
the policy, the reference and the value head are run over prompt + response for the per-token
log-probabilities, KL and values; GAE gives advantages and returns (`_ppo_math`). The rollout is then cut
into micro-batches, reshuffled for each of ``num_ppo_epochs`` passes, and every Trainer micro-step
(`compute_loss`) trains on one: clipped policy loss + ``vf_coef`` x clipped value loss. The Trainer's own
loop does the rest (gradient accumulation, clipping, scheduler, logging, checkpoints, resume), the way
TRL's GRPOTrainer reuses a generation batch: the dataloader yields each rollout's prompts once per micro-step
of that rollout, and only the first of them generates.

The value head is an ``nn.Linear(hidden, 1)`` on the policy's last hidden state, as in TRL's former
AutoModelForCausalLMWithValueHead, rather than a separate value model: it adds one vector of parameters
instead of a second model (or a second adapter set) in memory, and its gradients also shape the trunk the
method trains. It is attached to the model as ``value_head`` while training, so the optimizer, gradient
clipping, device placement and DDP treat it like any other trained parameter; it is kept out of what the
model saves (checkpoints and the run's adapter/model load with plain transformers/peft) and written next
to them as ``value_head.safetensors`` (read back on resume). After ``train()`` the model no longer has it.
"""

from __future__ import annotations

import copy
import math
from collections import defaultdict
from contextlib import contextmanager
from pathlib import Path

import torch
from transformers import GenerationConfig, Trainer
from trl.trainer.utils import RepeatSampler, disable_dropout_in_model, pad, selective_log_softmax

from tuneforge.stages import _ppo_math as F
from tuneforge.stages._trl import final_metrics
from tuneforge.training.trainer import TuneforgeMixin

VALUE_HEAD_FILE = "value_head.safetensors"
VALUE_HEAD = "value_head"  # the attribute (and parameter-name prefix) on the policy while training


def _rows(batch: list[dict]) -> list[dict]:
    return batch  # the dataloader hands over the prompt rows as they are (prompt, prompt_ids, answer, ...)


# the logged metrics the manifest keeps, last value each
METRIC_PREFIXES = ("reward", "rewards/", "kl", "policy_loss", "value_loss", "clipfrac", "completions/")


class PPOTrainer(Trainer):
    def __init__(self, *, model, args, ppo, method, reward_funcs, reward_processing_classes, reward_weights,
                 stop_tokens, processing_class, **kwargs):  # fmt: skip
        from tuneforge.inference.generate import stop_token_ids
        from tuneforge.methods import has_adapter
        from tuneforge.rewards.score import reward_name

        self.ppo = ppo
        self.method = method
        tok = processing_class
        self.pad_id = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
        self.stop_ids = stop_token_ids(tok, stop_tokens)
        if ppo.disable_dropout:
            disable_dropout_in_model(model)
        # LoRA & co.: the reference is the policy with its adapter off; full/freeze: a frozen copy
        self.ref_model = (
            None if has_adapter(model, method) else copy.deepcopy(model).requires_grad_(False).eval()
        )
        self.value_head = _new_value_head(model)
        setattr(model, VALUE_HEAD, self.value_head)
        self.reward_funcs = reward_funcs
        self.reward_processing_classes = reward_processing_classes
        self.reward_weights = reward_weights
        self.reward_names = [reward_name(f) for f in reward_funcs]
        self._metrics: dict[str, defaultdict[str, list[float]]] = {
            "train": defaultdict(list),
            "eval": defaultdict(list),
        }
        self._buffer: list[dict] | None = None
        self._micro_step = 0
        super().__init__(model=model, args=args, processing_class=tok, data_collator=_rows, **kwargs)
        # tokens are counted by the rollouts (prompt + response); the Trainer cannot see them in the rows
        self.args.include_num_input_tokens_seen = "no"
        for m in [self.ref_model, *reward_funcs]:
            if isinstance(m, torch.nn.Module):
                m.to(self.accelerator.device)
        self.generation_config = GenerationConfig(
            max_new_tokens=ppo.response_length, do_sample=True, temperature=ppo.temperature, top_k=0,
            top_p=1.0, eos_token_id=self.stop_ids, pad_token_id=self.pad_id,
        )  # fmt: skip
        ga = self.args.gradient_accumulation_steps
        self.rollout_size = self.args.per_device_train_batch_size * ga * ppo.num_mini_batches
        self.generate_every = ppo.num_ppo_epochs * ppo.num_mini_batches * ga  # micro-steps per rollout

    # --- data: each rollout's prompts, repeated for every micro-step that trains on them
    def get_train_dataloader(self):
        return self._get_dataloader(
            dataset=self.train_dataset,
            description="Training",
            batch_size=self.rollout_size,
            sampler_fn=self._get_train_sampler,
            is_training=True,
        )

    def _get_train_sampler(self, train_dataset=None):
        dataset = train_dataset if train_dataset is not None else self.train_dataset
        seed = self.args.data_seed if self.args.data_seed is not None else self.args.seed
        return RepeatSampler(dataset, 1, self.rollout_size, self.generate_every, shuffle=True, seed=seed)

    def _prepare_inputs(self, batch):
        if not self.model.training:
            return batch  # evaluation: prediction_step runs its own rollout
        if self._buffer is None:  # first step, or resumed: continue at the same place of the cycle
            self._micro_step = self.state.global_step * self.args.gradient_accumulation_steps
        position = self._micro_step % self.generate_every
        if self._buffer is None or position == 0:
            self._buffer = self._micro_batches(self._rollout(batch, "train"))
        return self._buffer[position]

    def training_step(self, *args, **kwargs):
        loss = super().training_step(*args, **kwargs)
        self._micro_step += 1
        return loss

    # --- rollout
    def _forward(self, model, ids: torch.Tensor, attention: torch.Tensor, hidden: bool):
        """(logits, last hidden state or None) of ``model`` on left-padded ``ids``."""
        positions = (attention.cumsum(1) - 1).clamp(min=0)
        out = model(input_ids=ids, attention_mask=attention, position_ids=positions,
                    output_hidden_states=hidden, use_cache=False)  # fmt: skip
        n = ids.shape[1]  # prompt-learning methods put virtual tokens in front: keep the real positions
        return out.logits[:, -n:], (out.hidden_states[-1][:, -n:] if hidden else None)

    def _response_logprobs(self, logits: torch.Tensor, responses: torch.Tensor, start: int) -> torch.Tensor:
        return selective_log_softmax(logits[:, start - 1 : -1] / self.ppo.temperature, responses)

    def _values(self, hidden: torch.Tensor, start: int) -> torch.Tensor:
        return self.value_head(hidden[:, start - 1 : -1].to(self.value_head.weight.dtype)).squeeze(-1)

    @contextmanager
    def _reference(self):
        from tuneforge.methods import disable_adapter

        if self.ref_model is not None:
            yield self.ref_model
        else:
            with disable_adapter(self.model, self.method):
                yield self.model

    @torch.no_grad()
    def _rollout(self, rows: list[dict], mode: str) -> dict:
        ppo, model, device = self.ppo, self.model, self.accelerator.device
        was_training = model.training
        model.eval()
        prompts = pad([torch.tensor(r["prompt_ids"]) for r in rows], self.pad_id, padding_side="left")
        prompt_mask = pad(
            [torch.ones(len(r["prompt_ids"]), dtype=torch.long) for r in rows], 0, padding_side="left"
        )
        prompts, prompt_mask = prompts.to(device), prompt_mask.to(device)
        start = prompts.shape[1]
        generated = self.accelerator.unwrap_model(model).generate(
            input_ids=prompts, attention_mask=prompt_mask, generation_config=self.generation_config
        )
        responses = generated[:, start:]
        mask = F.response_mask(responses, self.stop_ids)
        ids = torch.cat([prompts, responses.masked_fill(~mask, self.pad_id)], 1)
        attention = torch.cat([prompt_mask, mask.long()], 1)
        logprobs, values, ref_logprobs = [], [], []
        for part in torch.arange(len(rows), device=device).split(self.args.per_device_train_batch_size):
            logits, hidden = self._forward(model, ids[part], attention[part], hidden=True)
            logprobs.append(self._response_logprobs(logits, responses[part], start))
            values.append(self._values(hidden, start))
            with self._reference() as ref:
                ref_logits, _ = self._forward(ref, ids[part], attention[part], hidden=False)
            ref_logprobs.append(self._response_logprobs(ref_logits, responses[part], start))
        if was_training:
            model.train()
        logprobs, values, ref_logprobs = (
            torch.cat(logprobs),
            torch.cat(values).float(),
            torch.cat(ref_logprobs),
        )

        scores, per_func = self._score(rows, responses, mask)
        penalised = scores.to(device)
        if ppo.missing_eos_penalty is not None:
            has_stop = torch.isin(responses, torch.tensor(self.stop_ids, device=device)).any(1)
            penalised = penalised - ppo.missing_eos_penalty * (~has_stop).float()
        kl = F.kl_estimate(logprobs, ref_logprobs, ppo.kl_estimator) * mask
        rewards = F.token_rewards(penalised, kl, mask, ppo.kl_coef)
        if ppo.whiten_rewards:
            rewards = F.masked_whiten(rewards, mask, shift_mean=False) * mask
        advantages, returns = F.gae(rewards, values, mask, ppo.gamma, ppo.lam)
        advantages = F.masked_whiten(advantages, mask) * mask
        self._record_rollout(mode, scores, per_func, kl, mask)
        if mode == "train":
            self.state.num_input_tokens_seen += int(attention.sum())
        return {
            "input_ids": ids, "attention_mask": attention, "mask": mask, "start": start,
            "old_logprobs": logprobs, "old_values": values * mask, "advantages": advantages, "returns": returns,
        }  # fmt: skip

    def _score(self, rows: list[dict], responses: torch.Tensor, mask: torch.Tensor):
        from tuneforge.rewards.score import score_completions

        completion_ids = [r[: int(n)].tolist() for r, n in zip(responses, mask.sum(1), strict=True)]
        completions = self.processing_class.batch_decode(completion_ids, skip_special_tokens=True)
        columns = {k: [r[k] for r in rows] for k in rows[0] if k != "prompt"}
        return score_completions(
            self.reward_funcs, self.reward_processing_classes, self.reward_weights,
            prompts=[r["prompt"] for r in rows], completions=completions, completion_ids=completion_ids,
            columns={**columns, "trainer_state": self.state},
        )  # fmt: skip

    def _micro_batches(self, rollout: dict) -> list[dict]:
        """The rollout cut into micro-batches, in a fresh random order for each PPO pass."""
        out = []
        n = rollout["input_ids"].shape[0]
        for _ in range(self.ppo.num_ppo_epochs):
            for part in torch.randperm(n).split(self.args.per_device_train_batch_size):
                part = part.to(rollout["input_ids"].device)
                out.append({k: v[part] if isinstance(v, torch.Tensor) else v for k, v in rollout.items()})
        return out

    # --- loss
    def _loss(self, model, batch: dict, mode: str) -> torch.Tensor:
        start = batch["start"]
        logits, hidden = self._forward(model, batch["input_ids"], batch["attention_mask"], hidden=True)
        responses = batch["input_ids"][:, start:]
        logprobs = self._response_logprobs(logits, responses, start)
        values = self._values(hidden, start)
        policy_loss, value_loss, clipfrac = F.clipped_losses(
            logprobs, values, batch, self.ppo.cliprange, self.ppo.cliprange_value
        )
        metrics = self._metrics[mode]
        metrics["policy_loss"].append(float(policy_loss.detach()))
        metrics["value_loss"].append(float(value_loss.detach()))
        metrics["clipfrac"].append(float(clipfrac))
        return policy_loss + self.ppo.vf_coef * value_loss

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        loss = self._loss(model, inputs, "train")
        return (loss, None) if return_outputs else loss

    def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None):
        with torch.no_grad():
            loss = self._loss(model, self._rollout(inputs, "eval"), "eval")
        return loss.detach(), None, None

    # --- logging
    def _record_rollout(self, mode: str, scores, per_func, kl, mask) -> None:
        metrics = self._metrics[mode]
        metrics["reward"].append(float(scores.mean()))
        metrics["reward_std"].append(float(scores.std()) if len(scores) > 1 else 0.0)
        for i, name in enumerate(self.reward_names):
            column = per_func[:, i]
            column = column[~column.isnan()]
            if len(column):
                metrics[f"rewards/{name}/mean"].append(float(column.mean()))
                metrics[f"rewards/{name}/std"].append(float(column.std()) if len(column) > 1 else 0.0)
        metrics["kl"].append(float(F.masked_mean(kl, mask)))
        metrics["completions/mean_length"].append(float(mask.sum(1).float().mean()))

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        mode = "train" if self.model.training else "eval"
        prefix = "" if mode == "train" else "eval_"
        # in place: evaluate() returns the dict it logs, so the eval rewards reach the manifest too
        logs.update({f"{prefix}{k}": sum(v) / len(v) for k, v in self._metrics[mode].items() if v})
        self._metrics[mode].clear()
        super().log(logs, start_time)

    # --- the value head: trained with the model, saved beside it
    @contextmanager
    def _without_value_head(self):
        model = self.accelerator.unwrap_model(self.model)
        attached = VALUE_HEAD in model._modules
        if attached:
            delattr(model, VALUE_HEAD)
        try:
            yield
        finally:
            if attached:
                setattr(model, VALUE_HEAD, self.value_head)

    def _save(self, output_dir: str | None = None, state_dict=None):
        output_dir = output_dir or self.args.output_dir
        if state_dict is not None:
            state_dict = {k: v for k, v in state_dict.items() if not k.startswith(f"{VALUE_HEAD}.")}
        with self._without_value_head():
            super()._save(output_dir, state_dict)
        save_value_head(self.value_head, Path(output_dir))

    def _load_from_checkpoint(self, resume_from_checkpoint, model=None):
        with self._without_value_head():
            super()._load_from_checkpoint(resume_from_checkpoint, model)
        load_value_head(self.value_head, Path(resume_from_checkpoint))

    def train(self, *args, **kwargs):
        result = super().train(*args, **kwargs)
        if self.args.should_save:
            save_value_head(self.value_head, Path(self.args.output_dir))
        model = self.accelerator.unwrap_model(self.model)
        if VALUE_HEAD in model._modules:
            delattr(model, VALUE_HEAD)  # what the run saves and compares is the plain policy
        result.metrics.update(final_metrics(self.state.log_history, METRIC_PREFIXES))
        return result


class TuneforgePPOTrainer(TuneforgeMixin, PPOTrainer):
    def trained_tokens(self, inputs: dict):
        mask = inputs.get("mask") if isinstance(inputs, dict) else None
        return None if mask is None else mask.sum()


def _new_value_head(model) -> torch.nn.Linear:
    config = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
    device = next(p.device for p in model.parameters() if p.device.type != "meta")
    head = torch.nn.Linear(config.hidden_size, 1, device=device, dtype=torch.float32)
    torch.nn.init.normal_(head.weight, std=1 / math.sqrt(config.hidden_size + 1))
    torch.nn.init.zeros_(head.bias)
    return head


def save_value_head(head: torch.nn.Module, folder: Path) -> None:
    import os

    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{VALUE_HEAD_FILE}.tmp"
    save_file({k: v.detach().cpu().contiguous() for k, v in head.state_dict().items()}, str(tmp))
    os.replace(tmp, folder / VALUE_HEAD_FILE)


def load_value_head(head: torch.nn.Module, folder: Path) -> bool:
    from safetensors.torch import load_file

    path = folder / VALUE_HEAD_FILE
    if not path.is_file():
        return False
    head.load_state_dict(load_file(str(path), device=str(head.weight.device)))
    return True
