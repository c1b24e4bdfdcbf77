"""Prompts rendered through a chat template (teacher.hf.chat_template): layout, the bank part as a string
prefix of every prompt (so the hf backend's KV-prefix sharing still works), and templates that fail."""

from __future__ import annotations

import dataclasses
import shutil

import pytest

from llmrl.config import HFConfig
from llmrl.teacher.backends import BackendError
from llmrl.teacher.backends.hf import HFBackend
from llmrl.teacher.prompting import ChatPrompts, PlainPrompts, bank_prefix, build_prompt, query_body

# ChatML, as SmolLM2 and many instruction-tuned models use it.
CHATML = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
          "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")


def _with_template(src: str, dst, template: str) -> str:
    shutil.copytree(src, dst)
    (dst / "chat_template.jinja").write_text(template)
    return str(dst)


@pytest.fixture(scope="module")
def chat_lm_dir(tiny_lm_dir, tmp_path_factory):
    """The tiny LM with a ChatML chat template, as the tokenizer of a converted GGUF model carries one."""
    return _with_template(tiny_lm_dir, tmp_path_factory.mktemp("chat") / "lm", CHATML)


@pytest.fixture(scope="module")
def chat_backend(chat_lm_dir):
    return HFBackend(HFConfig(model=chat_lm_dir, chat_template="on"))


def test_the_layout_puts_the_bank_in_system_and_the_cue_after_the_generation_prompt(chat_backend, bank,
                                                                                       mixed_queries):
    prompts = chat_backend._prompts
    assert isinstance(prompts, ChatPrompts)
    minigrid, crafter = mixed_queries[0], mixed_queries[3]
    text = prompts.build(minigrid, bank)
    assert text == (f"<|im_start|>system\n{bank_prefix(bank)}<|im_end|>\n<|im_start|>user\n{query_body(minigrid)}"
                    "<|im_end|>\n<|im_start|>assistant\nPlan:")
    assert prompts.build(crafter, bank).endswith(f"{query_body(crafter)}<|im_end|>\n<|im_start|>assistant\nSub-goal:")


def test_the_bank_part_is_a_string_prefix_of_every_prompt_of_that_bank(chat_backend, bank, mixed_queries):
    prompts = chat_backend._prompts
    shared = prompts.shared_prefix(bank)
    assert shared.endswith("<|im_start|>user\n") and bank_prefix(bank) in shared
    assert all(prompts.build(q, bank).startswith(shared) for q in mixed_queries)
    newer = dataclasses.replace(bank, version=bank.version + 1, feedback_lines=("plan explore failed 0/3 times",))
    assert prompts.shared_prefix(newer) != shared
    assert all(prompts.build(q, newer).startswith(prompts.shared_prefix(newer)) for q in mixed_queries)


def test_chat_prompts_keep_prefix_sharing_and_score_as_defined(chat_backend, bank, mixed_queries, reference_scores):
    prompts = [chat_backend._prompts.build(q, bank) for q in mixed_queries]
    options = [q.options for q in mixed_queries]
    shared = chat_backend._prompts.shared_prefix(bank)
    prefix, _, _ = chat_backend._encode(prompts, [[f" {o}\n" for o in opts] for opts in options], shared)
    assert prefix, "the chat template's bank part must be shared, not recomputed per prompt"
    reference = reference_scores(chat_backend, prompts, options)
    before = chat_backend.stats()["prefix_reuses"]
    for _ in range(2):
        got = chat_backend._score(prompts, options, shared)
        assert [s for s, _ in got] == [pytest.approx(r, abs=1e-4) for r in reference]
    assert chat_backend.stats()["prefix_reuses"] == before + 1


def test_auto_follows_the_tokenizer(tiny_lm_dir, chat_lm_dir, bank, mixed_queries):
    plain = HFBackend(HFConfig(model=tiny_lm_dir, chat_template="auto"))  # the tiny LM has no template
    assert isinstance(plain._prompts, PlainPrompts)
    assert plain._prompts.build(mixed_queries[0], bank) == build_prompt(mixed_queries[0], bank)
    assert isinstance(HFBackend(HFConfig(model=chat_lm_dir))._prompts, ChatPrompts)
    assert isinstance(HFBackend(HFConfig(model=chat_lm_dir, chat_template="off"))._prompts, PlainPrompts)


def test_on_without_a_template_is_one_line(tiny_lm_dir):
    with pytest.raises(BackendError) as err:
        HFBackend(HFConfig(model=tiny_lm_dir, chat_template="on"))
    assert str(err.value) == f"teacher.hf.chat_template: on, but the tokenizer of '{tiny_lm_dir}' has no chat template"


@pytest.mark.parametrize("template, fragment", [
    ("{{ raise_exception('System role not supported') }}", "System role not supported"),
    ("{% for m in messages %}{{ m['content'] }{% endfor %}", "does not render"),  # a jinja syntax error
    ("{% for m in messages %}{% if m['role'] == 'system' %}{{ m['content'] }}{% endif %}{% endfor %}",
     "does not render the user message exactly once"),
])
def test_a_template_that_fails_to_render_fails_at_start_up_in_one_line(tiny_lm_dir, tmp_path, template, fragment):
    model = _with_template(tiny_lm_dir, tmp_path / "lm", template)
    with pytest.raises(BackendError) as err:
        HFBackend(HFConfig(model=model, chat_template="auto"))
    msg = str(err.value)
    assert msg.startswith(f"teacher.hf.chat_template: the chat template of '{model}' does not render")
    assert fragment in msg and "\n" not in msg
