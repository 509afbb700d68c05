"""`tuneforge export RUN --gguf OUT.gguf --quant TYPE`: one GGUF file llama.cpp / Ollama load, written
with the maintained `gguf` package (no external build), then read back with transformers and checked.

The reverse of `tuneforge.models.gguf` (which reads such files): hyperparameters under the
architecture's keys, tensors renamed with gguf's own TensorNameMap (Llama's q/k rows permuted as
llama.cpp's converter does), and the tokenizer as ``tokenizer.ggml.*`` (byte-level BPE: tokens,
types, merges, special ids) plus ``tokenizer.chat_template``. The end-of-turn token of the run's
template becomes the file's eos/eot id, so llama.cpp and Ollama stop where training stopped.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np
import torch

from tuneforge.errors import ConfigError, ModelError
from tuneforge.export.targets import QUANTS

log = logging.getLogger(__name__)

ARCHES = {"llama": "LLAMA", "qwen2": "QWEN2"}


def _qtype(quant: str):
    from gguf import GGMLQuantizationType as T

    if quant not in QUANTS:
        raise ConfigError(f"--quant {quant!r}: choose one of {', '.join(QUANTS)}")
    return getattr(T, quant.upper())


def _file_type(quant: str) -> int:
    from gguf import LlamaFileType as F

    plain = {"f32": F.ALL_F32, "f16": F.MOSTLY_F16, "bf16": F.MOSTLY_BF16}
    return plain[quant] if quant in plain else getattr(F, f"MOSTLY_{quant.upper()}")


def write_gguf(
    model, tokenizer, chat_template: str | None, stop_tokens, path: Path, quant: str, name: str
) -> dict:
    """Write ``model`` (a plain transformers causal LM) and its tokenizer to ``path``; returns counts
    of tensors per GGUF type."""
    import gguf

    qtype = _qtype(quant)
    config = model.config
    arch_name = ARCHES.get(config.model_type)
    if arch_name is None:
        raise ModelError(
            f"GGUF export supports {', '.join(ARCHES)} models; this one is {config.model_type!r}. "
            "Export with --merge and convert that folder with llama.cpp's convert_hf_to_gguf.py"
        )
    arch = getattr(gguf.MODEL_ARCH, arch_name)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    writer = gguf.GGUFWriter(tmp, gguf.MODEL_ARCH_NAMES[arch])
    writer.add_name(name)
    writer.add_file_type(_file_type(quant))
    writer.add_quantization_version(gguf.GGML_QUANT_VERSION)
    _add_hparams(writer, config)
    _add_tokenizer(writer, tokenizer, chat_template, stop_tokens, config.vocab_size)
    counts: dict[str, int] = {}
    for gguf_name, data, raw in _tensors(model, arch, qtype):
        writer.add_tensor(gguf_name, data, raw_dtype=raw)
        kind = raw.name if raw is not None else {np.float32: "F32", np.float16: "F16"}[data.dtype.type]
        counts[kind] = counts.get(kind, 0) + 1
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    os.replace(tmp, path)
    return counts


def _rope_theta(config) -> float:
    theta = getattr(config, "rope_theta", None)
    params = getattr(config, "rope_parameters", None) or {}
    if params.get("rope_type", "default") != "default":
        raise ModelError(
            f"GGUF export: rope scaling {params.get('rope_type')!r} is not written yet; export with --merge"
        )
    return float(theta if theta is not None else params.get("rope_theta", 10000.0))


def _add_hparams(writer, c) -> None:
    head_dim = getattr(c, "head_dim", None) or c.hidden_size // c.num_attention_heads
    writer.add_context_length(c.max_position_embeddings)
    writer.add_embedding_length(c.hidden_size)
    writer.add_block_count(c.num_hidden_layers)
    writer.add_feed_forward_length(c.intermediate_size)
    writer.add_head_count(c.num_attention_heads)
    writer.add_head_count_kv(c.num_key_value_heads or c.num_attention_heads)
    writer.add_rope_freq_base(_rope_theta(c))
    writer.add_layer_norm_rms_eps(c.rms_norm_eps)
    writer.add_vocab_size(c.vocab_size)
    if c.model_type == "llama":
        writer.add_rope_dimension_count(head_dim)


def _permute(w: torch.Tensor, n_head: int) -> torch.Tensor:
    """llama.cpp's row order for Llama's q/k projections (interleaved rotary halves)."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def _tensors(model, arch, qtype):
    import gguf
    from gguf import GGMLQuantizationType as T

    c = model.config
    names = gguf.get_tensor_name_map(arch, c.num_hidden_layers)
    tied = getattr(c, "tie_word_embeddings", False)
    for hf_name, tensor in model.state_dict().items():
        if hf_name == "lm_head.weight" and tied:
            continue  # no output.weight: readers tie it to token_embd, as the model does
        if hf_name.endswith("rotary_emb.inv_freq"):
            continue
        gguf_name = names.get_name(hf_name, try_suffixes=(".weight", ".bias"))
        if gguf_name is None:
            raise ModelError(f"GGUF export: no GGUF name for tensor {hf_name!r} of this {c.model_type} model")
        w = tensor.detach().float().cpu()
        if c.model_type == "llama" and hf_name.endswith(("q_proj.weight", "k_proj.weight")):
            heads = c.num_attention_heads if "q_proj" in hf_name else c.num_key_value_heads
            w = _permute(w, heads)
        data = w.numpy()
        if data.ndim == 1 or qtype == T.F32:
            yield gguf_name, data.astype(np.float32), None
        elif qtype == T.F16:
            yield gguf_name, data.astype(np.float16), None
        else:
            block = gguf.GGML_QUANT_SIZES[qtype][0]
            if data.shape[-1] % block:  # rows not a whole number of blocks: keep this one in f16
                yield gguf_name, data.astype(np.float16), None
            else:
                yield gguf_name, gguf.quants.quantize(data, qtype), qtype


def _add_tokenizer(writer, tokenizer, chat_template, stop_tokens, vocab_size: int) -> None:
    from gguf import TokenType

    state = json.loads(tokenizer.backend_tokenizer.to_str())
    model = state.get("model", {})
    if model.get("type") != "BPE" or "ByteLevel" not in json.dumps(state.get("pre_tokenizer")):
        raise ModelError(
            "GGUF export writes byte-level BPE tokenizers (SmolLM2, Qwen2, Llama 3); this tokenizer is "
            f"{model.get('type')!r}. Export with --merge and convert with llama.cpp's convert_hf_to_gguf.py"
        )
    vocab = tokenizer.get_vocab()
    if len(vocab) > vocab_size:
        raise ModelError(
            f"GGUF export: the tokenizer has {len(vocab)} tokens but the model only {vocab_size}"
        )
    by_id = {i: t for t, i in vocab.items()}
    added = tokenizer.added_tokens_decoder
    tokens, types = [], []
    for i in range(vocab_size):
        if i in added:
            tokens.append(added[i].content)
            types.append(TokenType.CONTROL if added[i].special else TokenType.USER_DEFINED)
        elif i in by_id:
            tokens.append(by_id[i])
            types.append(TokenType.NORMAL)
        else:
            tokens.append(f"[PAD{i}]")
            types.append(TokenType.UNUSED)
    merges = [m if isinstance(m, str) else " ".join(m) for m in model.get("merges", [])]
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre(_pre_type(tokenizer, state))
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    writer.add_token_merges(merges)
    stops = [tokenizer.convert_tokens_to_ids(t) for t in stop_tokens] or [tokenizer.eos_token_id]
    stops = [s for s in stops if s is not None]
    if not stops:
        raise ModelError("GGUF export: the run has no stop token and the tokenizer no eos token")
    writer.add_eos_token_id(stops[0])  # the end-of-turn token: where llama.cpp / Ollama stop
    writer.add_eot_token_id(stops[0])
    if tokenizer.bos_token_id is not None:
        writer.add_bos_token_id(tokenizer.bos_token_id)
    if tokenizer.unk_token_id is not None:
        writer.add_unk_token_id(tokenizer.unk_token_id)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else stops[0]
    writer.add_pad_token_id(pad)
    probe = tokenizer("a")["input_ids"]
    writer.add_add_bos_token(bool(probe) and probe[0] == tokenizer.bos_token_id)
    writer.add_add_eos_token(False)
    if chat_template:
        writer.add_chat_template(chat_template)


def _pre_type(tokenizer, state: dict) -> str:
    """llama.cpp's name for how text is split before BPE: kept from the GGUF the model came from,
    else looked up from the split pattern, else plain GPT-2 byte-level splitting."""
    from transformers.integrations.gguf.gguf_tokenizer_mapping import GGUF_PRE_TOKENIZER_SPLITS

    source = Path(getattr(tokenizer, "name_or_path", "") or ".") / "tuneforge-source.json"
    if source.is_file():
        gguf_file = json.loads(source.read_text()).get("gguf_file")
        if gguf_file and Path(gguf_file).is_file():
            import gguf

            field = gguf.GGUFReader(gguf_file).fields.get("tokenizer.ggml.pre")
            if field is not None:
                return str(field.contents())
    text = json.dumps(state.get("pre_tokenizer"))
    for name, pattern in GGUF_PRE_TOKENIZER_SPLITS.items():
        if json.dumps(pattern)[1:-1] in text:
            return name
    return "gpt-2"


@torch.no_grad()
def check_gguf(path: Path, reference, ref_tokenizer, chat_template, stop_tokens, check_stop: bool) -> dict:
    """Load ``path`` back with plain transformers and compare it with ``reference`` (the model it
    was written from): prompt tokens, chat template, logits, greedy answers, and that it stops."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from tuneforge.export.merged import ExportCheckFailed, probe_conversations
    from tuneforge.inference.generate import prompt_ids

    loaded = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, dtype=torch.float32)
    tok = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
    loaded.eval()
    if chat_template and tok.chat_template != chat_template:
        raise ExportCheckFailed(f"export check failed: {path} lost the run's chat template")
    eos = tok.eos_token_id
    stop_id = (
        ref_tokenizer.convert_tokens_to_ids(stop_tokens[0]) if stop_tokens else ref_tokenizer.eos_token_id
    )
    if eos != stop_id:
        raise ExportCheckFailed(
            f"export check failed: {path} ends turns with id {eos}, the run with {stop_id}"
        )
    same_answers, max_diff, stopped = 0, 0.0, 0
    probes = probe_conversations()
    for messages in probes:
        ids = prompt_ids(tok, messages, chat_template)
        if ids != prompt_ids(ref_tokenizer, messages, chat_template):
            raise ExportCheckFailed(
                f"export check failed: the tokenizer in {path} splits the prompt {messages[-1]['content']!r} "
                "differently from the run's tokenizer"
            )
        x = torch.tensor([ids])
        max_diff = max(
            max_diff, (loaded(input_ids=x).logits - reference(input_ids=x).logits.float()).abs().max().item()
        )
        a = _greedy(loaded, x, [eos], 32)
        b = _greedy(reference, x, [eos], 32)
        same_answers += a == b
        stopped += bool(a) and a[-1] == eos
    if check_stop and stopped < len(probes):
        raise ExportCheckFailed(
            f"export check failed: greedy generation from {path} stopped at its end-of-turn token "
            f"({tok.eos_token}) for {stopped} of {len(probes)} probe prompts within 32 tokens; the file is "
            "kept for inspection (pass --no-check-stop to accept it)"
        )
    return {
        "max_logit_diff": max_diff,
        "same_greedy_answers": f"{same_answers}/{len(probes)}",
        "stops": f"{stopped}/{len(probes)}",
        "size_mb": round(path.stat().st_size / 2**20, 1),
    }


def _greedy(model, x: torch.Tensor, eos: list[int], n: int) -> list[int]:
    out = model.generate(
        input_ids=x,
        attention_mask=torch.ones_like(x),
        max_new_tokens=n,
        do_sample=False,
        eos_token_id=eos,
        pad_token_id=eos[0],
    )
    return out[0, x.shape[1] :].tolist()


def export_gguf(
    run_dir: str, out: str, quant: str = "f16", *, check_stop: bool = True, trust_remote_code: bool = False
) -> dict:
    """Merge the run, write it as one GGUF file and check the file (see `check_gguf`);
    ``trust_remote_code`` is the command's flag (the run's config.yaml alone never enables it)."""
    from tuneforge.artifacts import load_run
    from tuneforge.export.merged import check_mergeable, merged_model
    from tuneforge.export.targets import check_file

    _qtype(quant)  # a bad --quant fails before anything loads
    path = Path(out)
    if path.suffix != ".gguf":
        raise ConfigError(f"--gguf {out!r}: give a file name ending in .gguf")
    check_file(path, "--gguf", "gguf")
    check_mergeable(run_dir, trust_remote_code=trust_remote_code)  # the adapter must fold into plain weights
    run = load_run(run_dir, trust_remote_code=trust_remote_code)
    model = merged_model(run).float().eval()
    counts = write_gguf(
        model, run.tokenizer, run.chat_template, run.stop_tokens, path, quant, Path(run_dir).resolve().name
    )
    info = check_gguf(path, model, run.tokenizer, run.chat_template, run.stop_tokens, check_stop)
    return {"out": str(path), "quant": quant, "tensor_types": counts, **info, "run": run}
