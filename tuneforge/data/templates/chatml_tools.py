"""ChatML with tools in the NousResearch Hermes-2-Pro format, for ChatML models without a tool format
of their own (SmolLM2, OpenHermes, ...): no default system prompt, and without tools it renders
exactly what `chatml` renders.

With tool schemas, the system turn holds the user's system message (when given), then the tools
as `<tools>` JSON lines and how to call them. An assistant turn writes each call as
`<tool_call>\n{"name": ..., "arguments": ...}\n</tool_call>` after its text (what vLLM's and
llama.cpp's Hermes parsers read back); each tool result is a turn of its own,
`<|im_start|>tool\n<tool_response>\n...\n</tool_response><|im_end|>\n`. Unlike Hermes-2-Pro's
template (which joins a run of results into one turn and has a default system prompt), every turn
renders the same whatever follows, so the renderer can mask it. Reasoning goes into the answer
inside <think> tags, as the renderer does for every template without a place for it.
"""

DESCRIPTION = "ChatML + Hermes-style tools (<tools>, <tool_call>, <tool_response>), no default system prompt"
STOP_TOKENS = ("<|im_end|>",)
# the <tool_call>-style tags are text: tokenizers without them as tokens split them into pieces,
# which trains and parses the same; only the turn delimiters must be real tokens
REQUIRED_TOKENS = ("<|im_start|>", "<|im_end|>")
TOOLS = True
JINJA = r"""{%- if tools %}
    {{- '<|im_start|>system\n' }}
    {%- if messages and messages[0]['role'] == 'system' %}
        {{- messages[0]['content'] + '\n\n' }}
    {%- endif %}
    {{- "# Tools\n\nYou may call one or more functions to assist with the user query.\n\nYou are provided with function signatures within <tools></tools> XML tags:\n<tools>" }}
    {%- for tool in tools %}
        {{- '\n' }}
        {{- tool | tojson }}
    {%- endfor %}
    {{- "\n</tools>\n\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call><|im_end|>\n" }}
{%- endif %}
{%- for message in messages %}
    {%- if message['role'] == 'system' and loop.first and tools %}
    {%- elif message['role'] == 'tool' %}
        {{- '<|im_start|>tool\n<tool_response>\n' + message['content'] + '\n</tool_response><|im_end|>\n' }}
    {%- elif message['role'] == 'assistant' and message['tool_calls'] %}
        {{- '<|im_start|>assistant' }}
        {%- if message['content'] %}
            {{- '\n' + message['content'] }}
        {%- endif %}
        {%- for tool_call in message['tool_calls'] %}
            {%- if tool_call['function'] is defined %}
                {%- set tool_call = tool_call['function'] %}
            {%- endif %}
            {{- '\n<tool_call>\n{"name": "' + tool_call['name'] + '", "arguments": ' }}
            {{- tool_call['arguments'] | tojson }}
            {{- '}\n</tool_call>' }}
        {%- endfor %}
        {{- '<|im_end|>\n' }}
    {%- else %}
        {{- '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\n' }}
{%- endif %}
"""
