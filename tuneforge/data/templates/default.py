"""A plain template for base models that have no chat template of their own:

    {system}\n\nUser: {user}\nAssistant: {answer}{eos}\n

The answer ends with the tokenizer's eos token (so no token is added to the vocabulary) and the
generation prompt is `Assistant:` without the space, so the space is trained as part of the answer's
first token, the way the model will produce it at inference.
"""

DESCRIPTION = "plain 'User: ...\\nAssistant: ...<eos>' for base models without a chat template"
STOP_TOKENS: tuple[str, ...] = ()  # the tokenizer's eos token
REQUIRED_TOKENS: tuple[str, ...] = ()
TOOLS = False
JINJA = r"""{%- for message in messages %}
    {%- if message['role'] == 'system' %}
        {{- message['content'] + '\n\n' }}
    {%- elif message['role'] == 'user' %}
        {{- 'User: ' + message['content'] + '\n' }}
    {%- elif message['role'] == 'assistant' %}
        {{- 'Assistant: ' + message['content'] + eos_token + '\n' }}
    {%- elif message['role'] == 'tool' %}
        {{- 'Tool: ' + message['content'] + '\n' }}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- 'Assistant:' }}
{%- endif %}
"""
