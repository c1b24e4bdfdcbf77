"""Build a tiny Llama causal LM with a word-level tokenizer, entirely offline.

Model hubs are unreachable here, so tests and CPU demos need an LM they can build themselves (as the
transformers and vLLM test suites do with their tiny random models). The result is a normal Hugging Face
model folder (``config.json``, ``model.safetensors``, ``tokenizer.json``, ...) that
``AutoTokenizer``/``AutoModelForCausalLM.from_pretrained(out_dir)`` and vLLM (Llama architecture, head size
32, which vLLM's attention kernels support) load like any other.

The tokenizer is word-level and lossless: words, single punctuation marks and single whitespace characters
are tokens, and decoding concatenates them. So a continuation such as ``" go to key\\n"`` has an exact token
sequence (needed for scoring and for vLLM's structured ``choice`` decoding) and decoded samples read like
the text they encode. Words outside the vocabulary map to ``[UNK]``; the default corpus covers the prompt
templates, MiniGrid (LLM4Teach) and Crafter (AdaRefiner) vocabulary.

The weights are random and stay untrained: scores are near uniform and samples are mostly unparseable, which
is what the tests need (valid shapes, padding, invalid-output accounting), not a useful teacher. Training was
tried: on these shared 2-core machines 100 AdamW steps on templated (prompt -> plan) pairs took 20 s to over
a minute, taught the answer format but not the state -> plan rule, so it is not worth its cost here. Use the
scripted backend for a teacher of known quality and a real LM for an LM teacher.

    python -m llmrl.teacher.tiny_lm OUT_DIR [--seed 0]
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

from llmrl.teacher.prompting import template_text

PAD, UNK, BOS, EOS = "[PAD]", "[UNK]", "[BOS]", "[EOS]"
# Same split as the tokenizer's pre-tokenizer: words, single punctuation marks, single whitespace characters.
_TOKEN_RE = r"\w+|[^\w\s]|\s"

# Model shape: 2 layers, width 64, 4 query heads of size 32 sharing 2 KV heads: ~98k weights in the layers
# plus the tied embedding (vocabulary x 64, ~28k with the default corpus). Head size 32 rather than
# 64/4 = 16 because vLLM's attention kernels start at 32.
_SHAPE = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
              num_key_value_heads=2, head_dim=32)
# vLLM requires max_model_len <= max_position_embeddings; 4096 covers teacher.vllm.max_model_len's default.
_MAX_POSITIONS = 4096

_MINIGRID_TEXT = """
In a locked 2D grid room, there is an agent whose task is to open the door. The door can only be opened while
agent holds the key. The agent can perform the following actions: explore, go to <object>, pick up <object>,
drop <object>, or open <object>. Please clarify which object the agent will be choosing.
The room has lava; stepping on the lava ends the episode, so the agent must avoid the lava.
There are two keys of different colors; only the key with the same color as the door can open it.
The agent should get to the goal. Go to the red ball. Reach the green goal square.
Agent sees <key>, <door>, holds <nothing>. Agent sees <nothing>, holds <key>. Agent sees <door>, holds <key>.
Agent sees <lava>, <key>, holds <nothing>. Agent sees <color1 key>, <color2 key>, <color1 door>, holds <nothing>.
The door is locked. The door is open. The door is closed. The key is carried. Nothing is carried. It is unseen.
Agent is at row 3 column 4, facing north. The agent faces east, west, south. Agent has explored the room.
Q: Agent sees <key>, holds <nothing>. A: The agent sees the key but holds nothing, so it should first go to the
key and pick it up. Action: {go to <key>, pick up <key>}
explore; go to key, pick up key; go to door, open door; drop key; toggle door; pick up key; go to key;
go to door; open door; go to goal; go to ball, pick up ball; go to box; drop ball; pick up box.
red green blue purple yellow grey color1 color2 key door ball box goal wall lava floor empty unseen agent
locked open closed carrying carried held holds holding sees seen visible cell cells grid room map
left right forward toggle done pickup drop
"""

_CRAFTER_TEXT = """
You are playing Crafter, a 2D open-world survival game. Collect resources, craft tools, place objects,
defeat enemies and unlock achievements. Stay alive: keep health, food, drink and energy up. Sleep at night.
Achievements: collect_coal collect_diamond collect_drink collect_iron collect_sapling collect_stone
collect_wood defeat_skeleton defeat_zombie eat_cow eat_plant make_iron_pickaxe make_iron_sword
make_stone_pickaxe make_stone_sword make_wood_pickaxe make_wood_sword place_furnace place_plant place_stone
place_table wake_up.
collect coal; collect diamond; collect drink; collect iron; collect sapling; collect stone; collect wood;
defeat skeleton; defeat zombie; eat cow; eat plant; make iron pickaxe; make iron sword; make stone pickaxe;
make stone sword; make wood pickaxe; make wood sword; place furnace; place plant; place stone; place table;
wake up; sleep; drink water; find water; find trees; find stone; avoid lava; survive; explore.
You see grass, sand, tree, water, stone, path, coal, iron, diamond, table, furnace, lava, cow, zombie,
skeleton, arrow, plant, sapling. Nearby: tree 2 steps north, water 5 steps east, cow 3 steps west.
You face a tree. You are facing stone. It is day. It is night. It is dark.
Inventory: health 9, food 7, drink 6, energy 8, sapling 1, wood 2, stone 0, coal 0, iron 0, diamond 0,
wood_pickaxe 1, stone_pickaxe 0, iron_pickaxe 0, wood_sword 0, stone_sword 0, iron_sword 0.
Status: health, food, drink, energy are low, high, full, empty.
Actions: noop, move_left, move_right, move_up, move_down, do, sleep, place_stone, place_table, place_furnace,
place_plant, make_wood_pickaxe, make_stone_pickaxe, make_iron_pickaxe, make_wood_sword, make_stone_sword,
make_iron_sword. move left, move right, move up, move down.
Recent sub-goals: collect wood, place table. Recent actions: do, move_left, noop.
Past sub-goals were completed; the sub-goal failed; sub-goal success rate; comprehension score.
north south east west up down left right near far nearby around ahead behind
"""

_GENERAL_TEXT = """
the a an is are was were be been to of and or with without in on at by for from into onto as than then
first next after before while until when if so but not no yes it its this that these those there here
you your agent student teacher has have had holds sees can could should would will must may might do does
which what where who how why because therefore need needs get gets got go goes take takes use uses
state states plan plans option options action actions answer choice step steps time times episode episodes
succeeded failed success successes failure trials tried worked work helped did done completed complete
in state S, plan P succeeded k/n times. % + - * / = < > ( ) [ ] { } : ; , . ! ? ' " _ #
one more many none every each all some other itself them they example examples inside outside above below
over under separated commas braces cannot hold choose follow possible plus made life kills fall caves beware
area adjacent far north-west north-east south-west south-east player zombies skeletons cows tech tree helping
9x9 9x7 7x9 view local
"""


def default_corpus() -> list[str]:
    """Text whose words make up the tiny LM's vocabulary."""
    numbers = " ".join(str(i) for i in range(101))
    return [template_text(), _MINIGRID_TEXT, _CRAFTER_TEXT, _GENERAL_TEXT, numbers]


def _vocabulary(corpus: Iterable[str]) -> dict[str, int]:
    words = set()
    for text in corpus:
        words.update(re.findall(_TOKEN_RE, text.lower()))
    words.update(" \n\t")
    specials = [PAD, UNK, BOS, EOS]
    return {w: i for i, w in enumerate(specials + sorted(words - set(specials)))}


def build_tokenizer(corpus: Iterable[str]):
    """A ``PreTrainedTokenizerFast`` over the corpus words (lossless word-level, lower-cased)."""
    from tokenizers import Regex, Tokenizer, decoders, normalizers, pre_tokenizers, processors
    from tokenizers.models import WordLevel
    from transformers import PreTrainedTokenizerFast

    vocab = _vocabulary(corpus)
    tok = Tokenizer(WordLevel(vocab, unk_token=UNK))
    tok.normalizer = normalizers.Lowercase()
    # invert=True: the regex describes the pieces to keep; every character matches one alternative.
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(_TOKEN_RE), behavior="removed", invert=True)
    tok.decoder = decoders.Fuse()
    # A leading BOS like Llama tokenizers, so "add_special_tokens" means the same as for real models.
    tok.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A", pair=f"{BOS} $A $B", special_tokens=[(BOS, vocab[BOS])]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token=BOS, eos_token=EOS, unk_token=UNK, pad_token=PAD,
        model_max_length=_MAX_POSITIONS,
    )


def build_tiny_lm(out_dir: str | Path, corpus: Iterable[str] | None = None, seed: int = 0) -> Path:
    """Build and save a tiny random Llama + tokenizer into ``out_dir``; returns the folder."""
    import torch
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer(default_corpus() if corpus is None else list(corpus))
    config = LlamaConfig(
        vocab_size=len(tokenizer), max_position_embeddings=_MAX_POSITIONS, tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id, **_SHAPE,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    model.generation_config = GenerationConfig(
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    _add_portable_metadata(out)
    return out


def _add_portable_metadata(out: Path) -> None:
    """Add the transformers 4.x spellings of a few fields, so that the folder also loads where vLLM pins an
    older transformers (which reads ``torch_dtype``/``rope_theta`` and knows no ``TokenizersBackend``)."""
    import json

    cfg_path = out / "config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg.setdefault("torch_dtype", cfg.get("dtype", "float32"))
    cfg.setdefault("rope_theta", (cfg.get("rope_parameters") or {}).get("rope_theta", 10000.0))
    cfg_path.write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n")
    tok_path = out / "tokenizer_config.json"
    tok = json.loads(tok_path.read_text())
    tok["tokenizer_class"] = "PreTrainedTokenizerFast"
    tok_path.write_text(json.dumps(tok, indent=2, sort_keys=True) + "\n")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m llmrl.teacher.tiny_lm", description=__doc__.split("\n")[0])
    parser.add_argument("out_dir", help="folder to write the model and tokenizer into")
    parser.add_argument("--seed", type=int, default=0, help="weight initialisation seed")
    args = parser.parse_args(argv)
    path = build_tiny_lm(args.out_dir, seed=args.seed)
    print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
