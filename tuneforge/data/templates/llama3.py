"""Llama 3 Instruct's header format: `<|begin_of_text|>`, then per message
`<|start_header_id|>role<|end_header_id|>\n\n` + content (trimmed) + `<|eot_id|>`; no tool calls.

Meta-Llama-3-8B-Instruct's chat template with its `bos_token` spelled out as `<|begin_of_text|>`,
so it renders the same whatever the tokenizer calls its bos token.
"""

DESCRIPTION = "Llama 3 Instruct (<|start_header_id|>role<|end_header_id|> ... <|eot_id|>), no tools"
STOP_TOKENS = ("<|eot_id|>",)
REQUIRED_TOKENS = ("<|eot_id|>", "<|start_header_id|>", "<|end_header_id|>", "<|begin_of_text|>")
TOOLS = False
JINJA = r"{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = '<|begin_of_text|>' + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"
