"""ChatML as OpenHermes-2.5 and many others use it: `<|im_start|>role\n...<|im_end|>\n`, no default
system prompt, no tool calls. Identical to teknium/OpenHermes-2.5-Mistral-7B's chat template."""

DESCRIPTION = "ChatML (<|im_start|>role ... <|im_end|>), no default system prompt, no tools"
STOP_TOKENS = ("<|im_end|>",)
REQUIRED_TOKENS = ("<|im_start|>", "<|im_end|>")
TOOLS = False
JINJA = r"{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
