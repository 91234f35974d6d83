"""ref_parsers in the demo: a chat request with tools answered with reasoning and tool calls.

The parsers need a tokenizer with the format's markers, so separate_run() starts a second
server on the parser plugin's tiny model (random weights: its test-only logits processor makes
it write a script given per request). It asks once whole and once streamed and prints both
messages, which are the same; its probe table shows the plugin in every process.
"""

from __future__ import annotations

import json

ORDER = 96
PLUGIN = "ref_parsers"
CHECK = "vllm_ref_parsers:status"
ENV: dict[str, str] = {}
SERVER_ARGS: list[str] = []
SEPARATE_TITLE = "a separate boot on the parser plugin's tiny model (markers as special tokens)"
TOOLS = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]


def separate_run(model):
    from transformers import AutoTokenizer
    from vllm_ref_harness import VllmServer
    from vllm_ref_parsers.format import render
    from vllm_ref_parsers.testing import script_arg, tiny_parsers_llama

    path = tiny_parsers_llama()
    tok = AutoTokenizer.from_pretrained(path)
    text = render("The user asks for the weather in Paris; one call.", ["Let me check. ",
                                                                          ("get_weather", {"city": "Paris"})])
    ids = tok.encode(text, add_special_tokens=False) + [tok.eos_token_id]
    args = ["--dtype", "float32", "--reasoning-parser", "ref_reasoning", "--tool-call-parser", "ref_tools",
            "--enable-auto-tool-choice", "--logits-processors", "vllm_ref_parsers.testing:ScriptedLogitsProcessor"]
    with VllmServer(path, args=args, plugins=[PLUGIN], checks={PLUGIN: CHECK}, env=ENV) as server:
        body = dict(model=server.model, messages=[{"role": "user", "content": "What is the weather in Paris?"}],
                    tools=TOOLS, max_tokens=len(ids), temperature=0, extra_body={"vllm_xargs": script_arg(ids)})
        msg = server.client().chat.completions.create(**body).choices[0].message
        parts: dict[str, str] = {"reasoning": "", "content": "", "calls": ""}
        for chunk in server.client().chat.completions.create(stream=True, **body):
            for c in chunk.choices:
                parts["reasoning"] += getattr(c.delta, "reasoning", None) or ""
                parts["content"] += c.delta.content or ""
                parts["calls"] += "".join(f"{t.function.name}{t.function.arguments}" for t in c.delta.tool_calls or [])
        report = server.wait_for_check(PLUGIN, ["front_end", "engine_core"])
    calls = "".join(f"{t.function.name}{t.function.arguments}" for t in msg.tool_calls or [])
    return report, [
        f"the engine wrote: {text!r}",
        f"message: reasoning {getattr(msg, 'reasoning', None)!r}, content {msg.content!r}, tool call {calls}",
        f"streamed, assembled: reasoning {parts['reasoning']!r}, content {parts['content']!r}, "
        f"tool call {parts['calls']}",
        f"same message streamed and not: {json.dumps(parts['calls'] == calls and parts['content'] == msg.content)}",
    ]


def exercise(server, model: str) -> list[str]:
    # Not used: the demo runs this plugin through separate_run (it needs the markers' tokenizer).
    return []
