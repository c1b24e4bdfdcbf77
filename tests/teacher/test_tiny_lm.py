"""The locally built tiny LM: a standard Hugging Face folder that Auto* classes (and vLLM) can load."""

from __future__ import annotations

import json
from pathlib import Path

from llmrl.teacher.tiny_lm import build_tokenizer, default_corpus, main


def test_folder_is_a_standard_llama(tiny_lm_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = Path(tiny_lm_dir)
    assert (folder / "model.safetensors").is_file() and (folder / "tokenizer.json").is_file()
    cfg = json.loads((folder / "config.json").read_text())
    assert cfg["model_type"] == "llama" and cfg["architectures"] == ["LlamaForCausalLM"]
    assert cfg["head_dim"] == 32 and cfg["num_hidden_layers"] == 2 and cfg["hidden_size"] == 64
    assert cfg["max_position_embeddings"] >= 2048
    tok = AutoTokenizer.from_pretrained(tiny_lm_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_lm_dir)
    assert model.config.vocab_size == len(tok)
    assert 50_000 < sum(p.numel() for p in model.parameters()) < 200_000
    assert tok.pad_token_id is not None and tok.eos_token_id is not None and tok.bos_token_id is not None


def test_tokenizer_is_lossless_on_prompt_vocabulary():
    tok = build_tokenizer(default_corpus())
    for text in [" go to key, pick up key\n", "Agent sees <key>, <door>, holds <nothing>.\nPlan:",
                 "Sub-goal: make wood pickaxe", "in state S, plan P succeeded 3/4 times", "wood_pickaxe 1"]:
        ids = tok(text, add_special_tokens=False)["input_ids"]
        assert tok.unk_token_id not in ids, text
        assert tok.decode(ids) == text.lower()
    assert tok(" zyzzyva", add_special_tokens=False)["input_ids"][-1] == tok.unk_token_id
    assert tok("explore")["input_ids"][0] == tok.bos_token_id


def test_cli_builds_a_folder(tmp_path, capsys):
    assert main([str(tmp_path / "lm")]) == 0
    assert (tmp_path / "lm" / "config.json").is_file()
    assert str(tmp_path / "lm") in capsys.readouterr().out
