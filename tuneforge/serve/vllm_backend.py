"""The vLLM backend of `tuneforge serve` (``--backend vllm``, or ``auto`` on a CUDA machine with vLLM).

Same contract as `tuneforge.serve.backends.TransformersBackend`: the engine's worker thread calls
``generate`` once per request. vLLM loads the base from its folder and applies each adapter per
request through a ``LoRARequest``. The answer arrives whole (no token streaming through this
synchronous API; a streamed request gets it as one chunk). Not exercised by the CPU test suite:
`create_backend` only reaches it where vLLM imports and a GPU is visible.
"""

from __future__ import annotations

from collections.abc import Callable

from tuneforge.errors import ConfigError
from tuneforge.serve.backends import Generation, Outcome
from tuneforge.serve.catalog import Catalog


class VLLMBackend:
    name = "vllm"

    def __init__(self, catalog: Catalog):
        from transformers import AutoTokenizer
        from vllm import LLM

        from tuneforge.models.load import resolve_model_source

        if catalog.method is not None and catalog.method.name == "qlora":
            raise ConfigError(
                "--backend vllm serves LoRA adapters over a float base; for a qlora run use "
                "--backend transformers, or export it with `tuneforge export RUN --merge OUT`"
            )
        trust = catalog.model.trust_remote_code  # the command's --trust-remote-code (see catalog)
        self.tokenizer = AutoTokenizer.from_pretrained(catalog.tokenizer_dir, trust_remote_code=trust)
        source = resolve_model_source(catalog.model)
        self.llm = LLM(
            model=source,
            tokenizer=catalog.tokenizer_dir,
            enable_lora=bool(catalog.adapters),
            trust_remote_code=trust,
        )
        self.adapter_ids = {name: i + 1 for i, name in enumerate(catalog.adapters)}
        self.adapter_dirs = {name: str(path) for name, path in catalog.adapters.items()}
        self.context_length = self.llm.llm_engine.model_config.max_model_len

    def generate(
        self, job: Generation, emit: Callable[[str], None], cancelled: Callable[[], bool]
    ) -> Outcome:
        from vllm import SamplingParams, TokensPrompt
        from vllm.lora.request import LoRARequest

        params = SamplingParams(
            max_tokens=job.max_new_tokens,
            temperature=job.temperature,
            top_p=job.top_p,
            seed=job.seed,
            stop=job.stop_strings or None,
            stop_token_ids=job.stop_ids or None,
        )
        lora = None
        if job.adapter is not None:
            lora = LoRARequest(job.adapter, self.adapter_ids[job.adapter], self.adapter_dirs[job.adapter])
        out = self.llm.generate(TokensPrompt(prompt_token_ids=job.prompt_ids), params, lora_request=lora)
        result = out[0].outputs[0]
        if result.text:
            emit(result.text)
        reason = "length" if result.finish_reason == "length" else "stop"
        return Outcome(reason, len(result.token_ids))
