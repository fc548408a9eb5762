"""Memory -> training data: novelty scores, selection with replay, SFT examples, hygiene, export.

novelty.py    what a chunk adds: 1 - max similarity to earlier memory, MinHash duplicates,
              importance signals
selection.py  novel items since the last build plus a replay share of older ones
generate.py   restatements per chunk (Q&A, paraphrase, summary, chat turns); offline or
              an LLM `Teacher`
hygiene.py    redaction, base-model token limits, de-duplication, split by source
dataset.py    the built set in <home>/datasets/<id>/
export.py     alpaca / sharegpt / openai files and LLaMA-Factory's dataset_info.json
"""
