"""Answering: LLM backends (llm), the prompt and its citations (prompting), `mem ask` and
`mem chat` (ask), remembering each exchange as conversation turns (remember), and the
llama.cpp build check (llama_build)."""
