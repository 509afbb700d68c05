"""The contract every tuning method keeps, run for each registered method on both tiny models:
only the intended parameters train (and as many as the method's formula says), forward/backward
are finite, a few optimizer steps lower the loss on a memorisation batch, save + reload gives the
same logits in a fresh process with plain transformers/peft, merging gives the adapter's logits (or
is refused with the reason), disabling an adapter gives the base's, and two adapters of a method
that supports it load onto one base and switch.

Adding a method = one file in tuneforge/methods + a row in ROWS below + one line in docs/methods.md.
"""

from __future__ import annotations

import copy
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import bitsandbytes as bnb
import pytest
import torch
from pydantic import ValidationError
from torch import nn
from transformers import AutoModelForCausalLM, TrainingArguments

from tuneforge.config.schema import ModelConfig
from tuneforge.errors import ConfigError, TrainingError
from tuneforge.methods import (
    METHODS,
    disable_adapter,
    method_optimizer_factory,
    method_training_arguments,
    save_method_adapter,
)
from tuneforge.methods._lora_common import LoraFields, save_weights
from tuneforge.methods._saved import CONFIG, WEIGHTS
from tuneforge.models.load import load_model
from tuneforge.models.merge import merge_adapter
from tuneforge.models.wrap import count_parameters, wrap
from tuneforge.training.trainer import TuneforgeTrainer

pytestmark = pytest.mark.filterwarnings("ignore:MatMul8bitLt")

LORA = {"r": 4, "lora_alpha": 8, "lora_dropout": 0.0}
PROMPT = {"num_virtual_tokens": 4}


def linears(plain: nn.Module) -> list[nn.Linear]:
    """The linear layers 'all-linear' adapts: all but the output head."""
    head = plain.get_output_embeddings()
    return [m for m in plain.modules() if isinstance(m, nn.Linear) and m is not head]


def named_linears(plain: nn.Module, names: tuple[str, ...]) -> list[nn.Linear]:
    return [m for n, m in plain.named_modules() if isinstance(m, nn.Linear) and n.rsplit(".", 1)[-1] in names]


def lora_count(plain: nn.Module, r: int = LORA["r"]) -> int:
    """LoRA on all linear layers but the head: r * (in + out) per layer (A is r x in, B is out x r)."""
    return sum(r * (m.in_features + m.out_features) for m in linears(plain))


def dora_count(plain: nn.Module) -> int:
    """LoRA plus DoRA's magnitude vector: one entry per output feature."""
    return lora_count(plain) + sum(m.out_features for m in linears(plain))


def lorafa_count(plain: nn.Module) -> int:
    """Only B (out x r) trains; A stays frozen."""
    return sum(LORA["r"] * m.out_features for m in linears(plain))


def lorafa_frozen_a(plain: nn.Module) -> int:
    return sum(LORA["r"] * m.in_features for m in linears(plain))


def vera_count(plain: nn.Module, r: int = 16) -> int:
    """Per layer only lambda_d (r) and lambda_b (out); the shared random matrices are frozen."""
    return sum(r + m.out_features for m in linears(plain))


def adalora_count(plain: nn.Module, r: int = 4) -> int:
    """Per layer P (out x r), Q (r x in) and the singular values E (r) at the initial rank."""
    return sum(r * (m.in_features + m.out_features + 1) for m in linears(plain))


def adalora_ranknums(plain: nn.Module) -> int:
    return len(linears(plain))  # one frozen 'ranknum' scalar per layer


def ia3_count(plain: nn.Module) -> int:
    """PEFT's default targets for the architecture (Llama: k_proj, v_proj, down_proj; Qwen2: q_proj,
    v_proj, down_proj): one entry per output feature, per input feature for feed-forward layers."""
    from peft.utils.constants import (
        TRANSFORMERS_MODELS_TO_IA3_FEEDFORWARD_MODULES_MAPPING as FEEDFORWARD,
    )
    from peft.utils.constants import TRANSFORMERS_MODELS_TO_IA3_TARGET_MODULES_MAPPING as TARGETS

    kind = plain.config.model_type
    ff = tuple(FEEDFORWARD[kind])
    out = tuple(t for t in TARGETS[kind] if t not in ff)
    return sum(m.out_features for m in named_linears(plain, out)) + sum(
        m.in_features for m in named_linears(plain, ff)
    )


def prompt_count(plain: nn.Module) -> int:
    """num_virtual_tokens x hidden: one trained embedding per virtual token."""
    return PROMPT["num_virtual_tokens"] * plain.config.hidden_size


def p_tuning_count(plain: nn.Module, e: int = 32) -> int:
    """The virtual-token embeddings plus PEFT's MLP encoder hidden -> e -> e -> hidden (with biases)."""
    h = plain.config.hidden_size
    return prompt_count(plain) + (h * e + e) + (e * e + e) + (e * h + h)


def bottleneck_count(d: int, b: int, gate: bool = False) -> int:
    """down (d x b + b) and up (b x d + d), plus a gate (d + 1)."""
    return 2 * d * b + b + d + (d + 1 if gate else 0)


def prefix_count(plain: nn.Module, tokens: int, gate: bool = False) -> int:
    """Per layer: keys and values, kv_heads x tokens x head_dim each, plus a scalar gate."""
    c = plain.config
    per_layer = 2 * c.num_key_value_heads * tokens * (c.hidden_size // c.num_attention_heads) + int(gate)
    return c.num_hidden_layers * per_layer


def adapter_count(plain: nn.Module, per_layer: int, size: int) -> int:
    return plain.config.num_hidden_layers * per_layer * bottleneck_count(plain.config.hidden_size, size)


def mam_count(plain: nn.Module) -> int:
    return adapter_count(plain, 1, MAM["bottleneck_size"]) + prefix_count(plain, MAM["num_virtual_tokens"])


def unipelt_count(plain: nn.Module) -> int:
    c, r = plain.config, UNIPELT["r"]
    lora = sum(
        r * (m.in_features + m.out_features) + m.in_features + 1  # A, B and the gate
        for n, m in plain.named_modules()
        if n.endswith(("q_proj", "v_proj"))
    )
    size = c.hidden_size // UNIPELT["reduction_factor"]
    adapter = c.num_hidden_layers * bottleneck_count(c.hidden_size, size, gate=True)
    return lora + adapter + prefix_count(plain, UNIPELT["num_virtual_tokens"], gate=True)


def bias_count(plain: nn.Module) -> int:
    """BitFit: one trainable vector per linear layer with a bias (the output head has none)."""
    return sum(m.out_features for m in plain.modules() if isinstance(m, nn.Linear) and m.bias is not None)


def last_layer_count(plain: nn.Module) -> int:
    return sum(p.numel() for p in plain.model.layers[-1].parameters())


def first_layer_count(plain: nn.Module) -> int:
    return sum(p.numel() for p in plain.model.layers[0].parameters())


def all_count(plain: nn.Module) -> int:
    return sum(p.numel() for p in plain.parameters())  # tied embeddings/head counted once


@dataclass(frozen=True)
class Row:
    id: str
    method: str
    config: dict
    adapter: bool  # apply returns a PEFT model (adapter saved on its own, can be disabled)
    trains: Callable[[str, int], bool]  # (parameter name, number of decoder layers) -> should it train
    count: Callable[[nn.Module], int]  # expected trainable parameters, from the plain float base
    lr: float
    merge_atol: float = 1e-5
    reload_atol: float = 0.0  # 0: the reloaded adapter gives bit-identical logits
    frozen_extra: Callable[[nn.Module], int] = lambda plain: 0  # frozen parameters the adapter adds
    # loss drop required after a few steps; lower only for methods that can barely move a random model
    min_drop: float = 0.5
    # the method's own adapter (save_adapter / load_adapter / disable_adapter hooks), not PEFT's
    own_adapter: bool = False
    # the trainable parameters are new ones added to the base (adapters, inserted blocks)
    adds: bool = False
    # model_type the method applies to; the others must be refused (tested separately)
    only: str | None = None
    # optimiser-side methods: "package:Class" of the optimizer the run's trainer must build
    optimizer: str | None = None

    @property
    def adds_parameters(self) -> bool:
        return self.adapter or self.own_adapter or self.adds


def only_lora(name: str, layers: int) -> bool:
    return "lora_" in name


def only_lora_b(name: str, layers: int) -> bool:
    return ".lora_B." in name


def only_last_layer(name: str, layers: int) -> bool:
    return f".layers.{layers - 1}." in name


def only_prompt_encoder(name: str, layers: int) -> bool:
    return name.startswith("prompt_encoder.")


# PiSSA/OLoRA save a converted rank-2r LoRA for the original base: W + s*(B@A - B0@A0) instead of
# the residual base W - s*B0@A0 plus s*B@A, equal up to float32 rounding
CONVERTED = 1e-5


def only_new_last_block(name: str, layers: int) -> bool:
    return f".layers.{layers}." in name  # llama_pro with num_expand=1 inserts block index `layers`


def containing(*parts: str) -> Callable[[str, int], bool]:
    return lambda name, layers: any(p in name for p in parts)


ADAPTER = {"reduction_factor": 2}  # bottleneck 64 / 2 = 32
MAM = {"bottleneck_size": 32, "num_virtual_tokens": 3}
UNIPELT = {"r": 8, "reduction_factor": 2, "num_virtual_tokens": 3}


def only_first_layer(name: str, layers: int) -> bool:
    return ".layers.0." in name


LOWRANK = {"rank": 4, "update_proj_gap": 5}


# fmt: off
ROWS = [
    Row("full", "full", {}, adapter=False, trains=lambda n, layers: True, count=all_count, lr=3e-3),
    Row("freeze", "freeze", {"trainable_layers": 1}, adapter=False, trains=only_last_layer, count=last_layer_count,
        lr=3e-3),
    # merge tolerance: float32 reassociation only, (W + s*B@A) x versus W x + s*B(A x)
    Row("lora", "lora", LORA, adapter=True, trains=only_lora, count=lora_count, lr=1e-2),
    # the 4-bit forward dequantizes W and runs a float32 matmul; merging dequantizes the same W with
    # bitsandbytes, so again only summation order differs (4-bit quantization itself moves these
    # logits by ~1.3e-1, so a merge into the original float base would fail by far)
    Row("qlora-4bit", "qlora", {**LORA, "bits": 4}, adapter=True, trains=only_lora, count=lora_count, lr=1e-2),
    # LLM.int8 also quantizes the activations of every matmul (inputs cast to float16, rows scaled
    # to int8), which moves these logits by up to ~1e-2; the merged float model has no such noise
    Row("qlora-8bit", "qlora", {**LORA, "bits": 8}, adapter=True, trains=only_lora, count=lora_count, lr=1e-2,
        merge_atol=3e-2),
    Row("dora", "dora", LORA, adapter=True, trains=only_lora, count=dora_count, lr=1e-2),
    Row("rslora", "rslora", LORA, adapter=True, trains=only_lora, count=lora_count, lr=1e-2),
    Row("pissa", "pissa", LORA, adapter=True, trains=only_lora, count=lora_count, lr=1e-2, reload_atol=CONVERTED),
    Row("olora", "olora", LORA, adapter=True, trains=only_lora, count=lora_count, lr=1e-2, reload_atol=CONVERTED),
    Row("loraplus", "loraplus", LORA, adapter=True, trains=only_lora, count=lora_count, lr=2e-3),
    Row("lorafa", "lorafa", LORA, adapter=True, trains=only_lora_b, count=lorafa_count, lr=3e-2,
        frozen_extra=lorafa_frozen_a),
    # LoftQ's adapter starts non-zero (the quantization residual), and larger rates overshoot on it
    Row("loftq", "loftq", LORA, adapter=True, trains=only_lora, count=lora_count, lr=1e-2, min_drop=0.3),
    Row("vera", "vera", {"r": 16}, adapter=True, trains=lambda n, layers: "vera_lambda" in n, count=vera_count,
        lr=0.1, min_drop=0.3),
    Row("adalora", "adalora", {"init_r": 4, "target_r": 2, "lora_dropout": 0.0}, adapter=True,
        trains=lambda n, layers: ".lora_" in n, count=adalora_count, lr=1e-2, frozen_extra=adalora_ranknums),
    Row("ia3", "ia3", {}, adapter=True, trains=lambda n, layers: "ia3_l" in n, count=ia3_count, lr=0.2, min_drop=0.1),
    Row("prompt_tuning", "prompt_tuning", PROMPT, adapter=True, trains=only_prompt_encoder, count=prompt_count,
        lr=0.5, min_drop=0.1),
    Row("p_tuning", "p_tuning", {**PROMPT, "encoder_hidden_size": 32}, adapter=True, trains=only_prompt_encoder,
        count=p_tuning_count, lr=3e-2, min_drop=0.1),
    Row("prefix_tuning", "prefix_tuning", PROMPT, adapter=True, trains=only_prompt_encoder, count=lambda m: prefix_count(m, PROMPT["num_virtual_tokens"]),
        lr=0.3, min_drop=0.1),
    # serial adapters read the sublayer outputs, which are ~0.01 in a random tiny model (embeddings
    # drawn with std 0.02), so 12 steps move the loss ~0.3 nats (LoRA reads normed inputs)
    # pfeiffer placement (MLP only) is checked in tests/unit/test_custom_methods.py
    Row("adapter-houlsby", "adapter", {**ADAPTER, "placement": "houlsby"}, adapter=False, own_adapter=True,
        trains=containing(".adapter."), count=lambda m: adapter_count(m, 2, 32), lr=3e-2, min_drop=0.2),
    # BEFT's bias delta is added after the layer; merging adds it into the bias: float32 rounding only.
    # 256 bias parameters (q/k/v of two layers) move the loss ~0.25 nats in 12 steps
    Row("bitfit", "bitfit", {}, adapter=True, trains=containing("beft_bias"), count=bias_count, lr=1e-1,
        merge_atol=1e-5, only="qwen2", min_drop=0.15),
    Row("llama_pro", "llama_pro", {"num_expand": 1}, adapter=False, adds=True, trains=only_new_last_block,
        count=last_layer_count, lr=5e-3),
    Row("relora", "relora", {**LORA, "merge_every": 2}, adapter=True, trains=only_lora, count=lora_count, lr=1e-2,
        merge_atol=1e-5),
    Row("lora_drop", "lora_drop", {**LORA, "probe_steps": 2}, adapter=True, trains=only_lora, count=lora_count,
        lr=1e-2, merge_atol=1e-5),
    Row("mam", "mam", MAM, adapter=False, own_adapter=True, trains=containing(".parallel_adapter.", ".tuneforge_prefix."),
        count=mam_count, lr=1e-2),
    Row("unipelt", "unipelt", UNIPELT, adapter=False, own_adapter=True,
        trains=containing(".lora.", ".adapter.", ".tuneforge_prefix."), count=unipelt_count, lr=3e-2),
    # optimiser-side methods: full fine-tuning whose point is the optimizer the trainer builds
    Row("galore", "galore", LOWRANK, adapter=False, trains=lambda n, layers: True, count=all_count, lr=3e-3,
        optimizer="galore_torch:GaLoreAdamW"),
    Row("apollo", "apollo", LOWRANK, adapter=False, trains=lambda n, layers: True, count=all_count, lr=3e-3,
        optimizer="apollo_torch:APOLLOAdamW"),
    # BAdam trains one decoder layer at a time, starting with the first (switch_mode ascending)
    Row("badam", "badam", {"switch_block_every": 100}, adapter=False, trains=only_first_layer,
        count=first_layer_count, lr=3e-3, optimizer="badam:BlockOptimizer"),
]
# fmt: on
# PEFT adapters, the methods' own adapters, and llama_pro's inserted blocks can all be switched off
ADAPTER_ROWS = [r for r in ROWS if r.adapter or hasattr(METHODS.get(r.method), "disable_adapter")]
# merging folds a PEFT adapter; llama_pro (merge: true) already saves a plain model, which the
# fresh-process reload test loads with plain transformers
MERGE_ROWS = [r for r in ROWS if METHODS.get(r.method).SUPPORTS["merge"] and r.adapter]
MULTI_ROWS = [r for r in ROWS if METHODS.get(r.method).SUPPORTS["multi_adapter"]]
LORA_METHODS = [n for n in METHODS.names() if issubclass(METHODS.get(n).Config, LoraFields)]
TARGET_METHODS = [n for n in METHODS.names() if "target_modules" in METHODS.get(n).Config.model_fields]


def by_id(rows: list[Row]):
    return pytest.mark.parametrize("row", rows, ids=[r.id for r in rows])


def method_cfg(row: Row):
    return METHODS.get(row.method).Config(**row.config)


def mutates_base(row: Row) -> bool:
    cfg = method_cfg(row)
    return bool(getattr(cfg, "mutates_base", lambda: False)())


_BASES: dict[str, nn.Module] = {}


def load(row: Row, model_dir) -> nn.Module:
    """A fresh base for ``row``; unquantized bases are loaded once per folder and copied."""
    cfg = method_cfg(row)
    if METHODS.get(row.method).load_kwargs(cfg):
        return load_model(ModelConfig(name_or_path=str(model_dir)), cfg)
    key = str(model_dir)
    if key not in _BASES:
        _BASES[key] = load_model(ModelConfig(name_or_path=key), cfg)
    return copy.deepcopy(_BASES[key])


def wrapped(row: Row, model_dir) -> nn.Module:
    if row.only and model_type(model_dir) != row.only:
        pytest.skip(f"{row.method} applies to {row.only} only; the refusal is tested on its own")
    return wrap(load(row, model_dir), method_cfg(row))


def plain_model(model_dir) -> nn.Module:
    return AutoModelForCausalLM.from_pretrained(model_dir)


def model_type(model_dir) -> str:
    import json

    return json.loads((model_dir / "config.json").read_text())["model_type"]


@pytest.fixture(scope="module")
def batch(tokenizer) -> dict:
    texts = [
        "The forge hums: tuneforge trains tiny models quickly.",
        "Seven is a prime number, and so is 13.",
    ]
    ids = [tokenizer(t)["input_ids"] for t in texts]
    n = min(len(i) for i in ids)
    input_ids = torch.tensor([i[:n] for i in ids])
    return {"input_ids": input_ids, "labels": input_ids.clone()}


def on(model: nn.Module, batch: dict) -> dict:
    """The batch on the model's device (qlora places its base on CUDA when there is one)."""
    return {k: v.to(model.device) for k, v in batch.items()}


@torch.no_grad()
def logits(model: nn.Module, batch: dict) -> torch.Tensor:
    """Logits at the batch's own positions (prompt tuning also returns its virtual tokens' first)."""
    model.eval()
    ids = on(model, batch)["input_ids"]
    return model(input_ids=ids).logits[:, -ids.shape[1] :].float().cpu()


@torch.no_grad()
def perturb(model: nn.Module, seed: int = 0) -> None:
    """Stand in for training: move every trainable parameter (LoRA's B starts at zero, which would
    make every adapter check pass trivially)."""
    gen = torch.Generator().manual_seed(seed)
    for p in model.parameters():
        if p.requires_grad:
            p.add_(torch.randn(p.shape, generator=gen).to(p.device, p.dtype) * 0.05)


def test_every_registered_method_has_a_row():
    rows = {r.method for r in ROWS}
    assert set(METHODS.names()) - rows == set(), "add a row for the new method to ROWS"
    assert rows - set(METHODS.names()) == set(), "a row names a method that is no longer registered"


def test_every_method_has_a_doc_section_and_a_runnable_example():
    import yaml

    root = Path(__file__).parents[2]
    docs = (root / "docs" / "methods.md").read_text()
    shown = set()
    for path in (root / "examples").rglob("*.yaml"):
        text = path.read_text()
        if text.startswith("# tuneforge "):  # headed by the command that runs it
            shown.add(((yaml.safe_load(text) or {}).get("method") or {}).get("name", "lora"))
    for name in METHODS.names():
        assert f"\n## {name}\n" in docs, f"add a '## {name}' section to docs/methods.md"
        assert name in shown, f"add an example config with method.name: {name} to examples/configs"


def test_every_method_declares_what_it_supports():
    for name in METHODS.names():
        supports = METHODS.get(name).SUPPORTS
        assert set(supports) == {"quantized_base", "merge", "multi_adapter"}, name
        assert all(isinstance(v, bool) for v in supports.values()), name


@by_id(ROWS)
def test_exactly_the_intended_parameters_train(row, tiny_model_dir):
    plain = plain_model(tiny_model_dir)
    layers = plain.config.num_hidden_layers
    model = wrapped(row, tiny_model_dir)
    named = dict(model.named_parameters())
    wrong = [n for n, p in named.items() if p.requires_grad != row.trains(n, layers)]
    assert not wrong, f"trainable flag differs from the method's intent for: {wrong[:5]}"
    trainable, total = count_parameters(model)
    assert trainable == row.count(plain)
    # quantized weights count by their logical size, so the total is the float base's (+ adapter)
    assert total == all_count(plain) + (trainable + row.frozen_extra(plain) if row.adds_parameters else 0)


@by_id(ROWS)
def test_forward_backward_is_finite(row, tiny_model_dir, batch):
    model = wrapped(row, tiny_model_dir)
    model.train()
    loss = model(**on(model, batch)).loss
    assert torch.isfinite(loss)
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)


def trainer_optimizer(model: nn.Module, row: Row, tmp_path, lr: float) -> torch.optim.Optimizer:
    """The optimizer a run's trainer builds for this method (its TrainingArguments + its own hook)."""
    cfg = method_cfg(row)
    args = TrainingArguments(
        output_dir=str(tmp_path), learning_rate=lr, use_cpu=True, report_to="none",
        **method_training_arguments(cfg),
    )  # fmt: skip
    trainer = TuneforgeTrainer(model=model, args=args, optimizer_factory=method_optimizer_factory(cfg))
    return trainer.create_optimizer()


@by_id(ROWS)
def test_a_few_steps_lower_the_loss(row, tiny_model_dir, batch, tmp_path):
    torch.manual_seed(0)
    model = wrapped(row, tiny_model_dir)
    if row.optimizer:  # the method's own optimizer is the point
        optim = trainer_optimizer(model, row, tmp_path, row.lr)
        package, name = row.optimizer.split(":")
        assert isinstance(optim, getattr(importlib.import_module(package), name))
    elif method_optimizer_factory(method_cfg(row)) is not None:  # LoRA+, LoRA-FA
        optim = trainer_optimizer(model, row, tmp_path, row.lr)
    else:
        optim = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=row.lr)
    model.train()
    losses = []
    for _ in range(12):
        loss = model(**on(model, batch)).loss
        loss.backward()
        optim.step()
        optim.zero_grad()
        losses.append(loss.item())
    # a random tiny model starts near ln(vocab) ~ 10.8; LoRA-like methods get >= 0.5 nats lower, the
    # ones with a few hundred parameters (IA3, soft prompts) less
    assert losses[-1] < losses[0] - row.min_drop, losses
    assert losses[:8] == sorted(losses[:8], reverse=True), losses  # a steady descent, not luck


RELOAD_SCRIPT = """
import json, sys, torch
from peft import PeftModel
from transformers import AutoModelForCausalLM
from tuneforge.methods import METHODS

for job in json.load(open(sys.argv[1])):
    cfg = METHODS.get(job["method"]).Config(**job["config"])
    kwargs = METHODS.get(job["method"]).load_kwargs(cfg)
    ids = torch.tensor(job["input_ids"])
    if job["own"]:  # our own adapter format: only tuneforge reads it
        from tuneforge.methods import load_method_adapter

        model = load_method_adapter(AutoModelForCausalLM.from_pretrained(job["base"]), cfg, job["saved"])
    elif job["adapter"]:  # plain transformers + plain peft, nothing from tuneforge but the load kwargs
        model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(job["base"], **kwargs), job["saved"])
    else:
        model = AutoModelForCausalLM.from_pretrained(job["saved"])
    for m in model.modules():  # plain bitsandbytes evaluates 4-bit layers in bf16 on AVX512-BF16
        if hasattr(m, "support_avx512bf16_for_cpu"):  # CPUs; compare on the exact path, as we train
            m.support_avx512bf16_for_cpu = False
    model.eval()
    with torch.no_grad():
        out = {"logits": model(input_ids=ids).logits[:, -ids.shape[1]:].float().cpu()}
        if job["adapter"]:
            with model.disable_adapter():
                out["disabled"] = model(input_ids=ids).logits.float().cpu()
    torch.save(out, job["out"])
"""


@pytest.fixture(scope="module")
def reloaded(tmp_path_factory, tiny_llama_dir, tiny_qwen2_dir, batch) -> dict:
    """Every row on both models: perturbed, saved as a run saves it, then reloaded in ONE fresh
    process with plain transformers/peft. Maps (row id, model dir) -> (logits, base logits, reloaded)."""
    import json
    import subprocess
    import sys

    root = tmp_path_factory.mktemp("reload")
    jobs, expected = [], {}
    for model_dir in (tiny_llama_dir, tiny_qwen2_dir):
        for row in ROWS:
            if row.only and model_type(model_dir) != row.only:
                continue
            key = f"{row.id}-{model_dir.name}"
            base_logits = logits(load(row, model_dir), batch)
            model = wrapped(row, model_dir)
            perturb(model)
            expected[(row.id, str(model_dir))] = (logits(model, batch), base_logits, root / f"{key}.pt")
            if row.own_adapter:
                save_method_adapter(model, method_cfg(row), root / key)
                assert sorted(p.name for p in (root / key).iterdir()) == [CONFIG, WEIGHTS]
            else:
                save_weights(model, root / key)
            jobs.append(
                {
                    "method": row.method,
                    "config": row.config,
                    "adapter": row.adapter,
                    "own": row.own_adapter,
                    "base": str(model_dir),
                    "saved": str(root / key),
                    "out": str(root / f"{key}.pt"),
                    "input_ids": batch["input_ids"].tolist(),
                }
            )
    (root / "jobs.json").write_text(json.dumps(jobs))
    done = subprocess.run(
        [sys.executable, "-c", RELOAD_SCRIPT, str(root / "jobs.json")], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return {k: (a, b, torch.load(path)) for k, (a, b, path) in expected.items()}


@by_id(ROWS)
def test_save_and_reload_in_a_fresh_process(row, tiny_model_dir, reloaded, tmp_path):
    if row.only and model_type(tiny_model_dir) != row.only:
        pytest.skip(f"{row.method} applies to {row.only} only; the refusal is tested on its own")
    trained, base, again = reloaded[(row.id, str(tiny_model_dir))]
    if row.reload_atol:
        torch.testing.assert_close(again["logits"], trained, rtol=0, atol=row.reload_atol)
    else:
        assert torch.equal(again["logits"], trained)
    if row.adapter:  # on the original base, whatever the initialisation did to it in training
        assert torch.equal(again["disabled"], base)


def test_an_adapter_run_saves_the_adapter_only(tiny_llama_dir, tmp_path):
    row = next(r for r in ROWS if r.id == "lora")
    save_weights(wrapped(row, tiny_llama_dir), tmp_path / "saved")
    assert (tmp_path / "saved" / "adapter_model.safetensors").is_file()
    assert not (tmp_path / "saved" / "model.safetensors").exists()


@by_id(MERGE_ROWS)
def test_merge_gives_the_adapter_logits(row, tiny_model_dir, batch, tmp_path):
    model = wrapped(row, tiny_model_dir)
    perturb(model)
    adapter_logits = logits(model, batch)
    merged = merge_adapter(model)
    assert not hasattr(merged.config, "quantization_config")
    assert not any(isinstance(m, bnb.nn.Linear4bit | bnb.nn.Linear8bitLt) for m in merged.modules())
    merged_logits = logits(merged, batch)
    torch.testing.assert_close(merged_logits, adapter_logits, rtol=0, atol=row.merge_atol)
    # what export does: save, then plain transformers reads it back unchanged
    merged.save_pretrained(tmp_path / "merged")
    assert torch.equal(logits(plain_model(tmp_path / "merged"), batch), merged_logits)


@by_id([r for r in ADAPTER_ROWS if r.adapter and r not in MERGE_ROWS])
def test_merge_is_refused_with_the_reason(row, tiny_llama_dir):
    from tuneforge.errors import ModelError

    with pytest.raises(ModelError, match="cannot be merged: it learns extra virtual tokens.*tuneforge chat"):
        merge_adapter(wrapped(row, tiny_llama_dir))


@by_id([r for r in ADAPTER_ROWS if not mutates_base(r)])
def test_disabling_the_adapter_restores_the_base(row, tiny_model_dir, batch):
    from peft import PeftModel

    model = wrapped(row, tiny_model_dir)
    base_logits = logits(load(row, tiny_model_dir), batch)
    assert isinstance(model, PeftModel) == row.adapter
    perturb(model)
    assert not torch.equal(logits(model, batch), base_logits)  # the adapter does change the outputs
    with disable_adapter(model, method_cfg(row)):
        assert torch.equal(logits(model, batch), base_logits)
    assert not torch.equal(logits(model, batch), base_logits)  # and is back on afterwards


@by_id(MULTI_ROWS)
def test_two_adapters_load_on_one_base_and_switch(row, tiny_model_dir, batch, tmp_path):
    from peft import PeftModel

    expected = {}
    for seed in (1, 2):
        model = wrapped(row, tiny_model_dir)
        perturb(model, seed)
        expected[f"a{seed}"] = logits(model, batch)
        save_weights(model, tmp_path / f"a{seed}")
    model = PeftModel.from_pretrained(load(row, tiny_model_dir), tmp_path / "a1", adapter_name="a1")
    model.load_adapter(tmp_path / "a2", adapter_name="a2")
    for name in ("a2", "a1"):
        model.set_adapter(name)
        torch.testing.assert_close(logits(model, batch), expected[name], rtol=0, atol=row.reload_atol)


@pytest.mark.parametrize("method", LORA_METHODS)
@pytest.mark.parametrize(
    "values, key, message",
    [
        ({"r": 0}, "r", "greater than 0"),
        ({"lora_alpha": -8}, "lora_alpha", "greater than 0"),
        ({"lora_dropout": 1.0}, "lora_dropout", "less than 1"),
        ({"bias": "some"}, "bias", "'none', 'all' or 'lora_only'"),
        ({"target_modules": []}, "target_modules", "at least one module name"),
    ],
)
def test_lora_config_rejects_bad_values(method, values, key, message):
    with pytest.raises(ValidationError) as err:
        METHODS.get(method).Config(**values)
    assert err.value.errors()[0]["loc"][0] == key
    assert message in str(err.value)


@pytest.mark.parametrize("method", LORA_METHODS)
def test_unknown_target_module_lists_the_linear_layers(method, tiny_llama_dir):
    cfg = METHODS.get(method).Config(target_modules=["q_proj", "query"])
    model = load_model(ModelConfig(name_or_path=str(tiny_llama_dir)), cfg)
    with pytest.raises(ConfigError, match="'query' matches no linear layer") as err:
        wrap(model, cfg)
    for name in ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"):
        assert name in str(err.value)
    assert "lm_head" not in str(err.value)


def test_unknown_module_to_save_is_rejected(tiny_llama_dir):
    cfg = METHODS.get("lora").Config(modules_to_save=["head"])
    with pytest.raises(ConfigError, match="'head' matches no module.*lm_head"):
        wrap(load_model(ModelConfig(name_or_path=str(tiny_llama_dir)), cfg), cfg)


def test_lora_target_list_adapts_only_those_layers(tiny_qwen2_dir):
    cfg = METHODS.get("lora").Config(r=2, target_modules=["q_proj", "v_proj"])
    model = wrap(load_model(ModelConfig(name_or_path=str(tiny_qwen2_dir)), cfg), cfg)
    adapted = {
        n.split(".lora_")[0].rsplit(".", 1)[-1] for n, p in model.named_parameters() if p.requires_grad
    }
    assert adapted == {"q_proj", "v_proj"}


def test_freeze_by_module_pattern(tiny_llama_dir):
    cfg = METHODS.get("freeze").Config(trainable_modules=["mlp", "norm"])
    assert cfg.trainable_layers == 0  # giving modules replaces the layer default
    model = wrap(load_model(ModelConfig(name_or_path=str(tiny_llama_dir)), cfg), cfg)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {n for n, _ in model.named_parameters() if ".mlp." in n} | {"model.norm.weight"}


def test_freeze_tied_embeddings_train_with_the_head(tiny_llama_dir):
    cfg = METHODS.get("freeze").Config(trainable_layers=0, train_lm_head=True)
    model = wrap(load_model(ModelConfig(name_or_path=str(tiny_llama_dir)), cfg), cfg)
    assert model.get_output_embeddings().weight is model.get_input_embeddings().weight
    assert [n for n, p in model.named_parameters() if p.requires_grad] == ["model.embed_tokens.weight"]


@pytest.mark.parametrize(
    "values, error, message",
    [
        (
            {"trainable_modules": ["attention"]},
            ConfigError,
            "'attention' matches no parameter.*self_attn.q_proj",
        ),
        ({"trainable_layers": 3}, ConfigError, "trainable_layers=3 but the model has 2 decoder layers"),
        (
            {"trainable_layers": 0},
            TrainingError,
            "method 'freeze' left no parameter trainable with trainable_layers=0",
        ),
    ],
)
def test_freeze_rejects_selections_that_do_not_fit(values, error, message, tiny_llama_dir):
    cfg = METHODS.get("freeze").Config(**values)
    with pytest.raises(error, match=message):
        wrap(load_model(ModelConfig(name_or_path=str(tiny_llama_dir)), cfg), cfg)


def test_wrap_refuses_a_quantized_base_for_a_method_without_support(tiny_llama_dir):
    quantized = load_model(ModelConfig(name_or_path=str(tiny_llama_dir)), METHODS.get("qlora").Config())
    with pytest.raises(ConfigError, match="cannot train a quantized base"):
        wrap(quantized, METHODS.get("lora").Config())


def test_wrap_logs_the_trainable_share(tiny_llama_dir, caplog):
    plain = AutoModelForCausalLM.from_pretrained(tiny_llama_dir)
    n, total = last_layer_count(plain), all_count(plain)
    cfg = METHODS.get("freeze").Config(trainable_layers=1)
    with caplog.at_level("INFO", logger="tuneforge"):
        wrap(load_model(ModelConfig(name_or_path=str(tiny_llama_dir)), cfg), cfg)
    assert f"trainable params: {n:,} of {total:,} ({100 * n / total:.2f}%)" in caplog.text
