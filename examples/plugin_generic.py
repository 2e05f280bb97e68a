"""tspo's frames for any image-list MLLM ("Frame at 12.0 s: <image>") or an OpenAI-compatible server.

Offline (prints the prompt and the message it would send):
    python examples/plugin_generic.py
A real server (vLLM / SGLang / OpenAI; needs `pip install openai`):
    python examples/plugin_generic.py --model Qwen/Qwen2.5-VL-72B-Instruct --base-url http://localhost:8000/v1 \
        --selector org/tspo-selector --video my.mp4 --question "What happens after the door opens?"
"""

from __future__ import annotations

from _plugin_common import parser, select

from tspo.plugins.generic import image_list_prompt, openai_messages


def main() -> None:
    p = parser(__doc__, "model name served at --base-url (default: print the request only)")
    p.add_argument("--base-url", default="http://localhost:8000/v1")
    args = p.parse_args()
    sel = select(args)
    prompt = image_list_prompt(sel, args.question)
    print(f"image-list prompt ({len(prompt.images)} images):\n{prompt.text}\n")
    messages = openai_messages(sel, args.question)
    parts = messages[-1]["content"]
    print(
        "OpenAI message parts:",
        [p["text"] if p["type"] == "text" else p["image_url"]["url"][:30] + "..." for p in parts],
    )
    if args.model:
        from openai import OpenAI

        client = OpenAI(base_url=args.base_url, api_key="EMPTY")
        reply = client.chat.completions.create(model=args.model, messages=messages, max_tokens=64)
        print("answer:", reply.choices[0].message.content)


if __name__ == "__main__":
    main()
