"""The prompt an LM teacher reads, and tolerant parsing of its answer back into one admissible option.

Prompt layout (LLM4Teach's task prompt + examples, AdaRefiner's feedback lines, then the state):

    <task description>                      \\
    Examples: ...                            |  shared prefix: depends on the prompt bank only, so every
    Feedback from the student: ...           |  query of one bank version starts with the same tokens and
    Sub-goal success rates: ...              |  vLLM's prefix cache serves them once
    Comprehension score: ...                /
    State: <state text>                     \\
    Context: <recent sub-goals, ...>         |  per query
    Analysis: <the analyst's analysis>       |  (adapter.role=analyst only)
    Allowed plans:                           |
    - <option 1>                             |
    - <option 2>                             |
    Plan:                                   /   answer cue; candidates are scored as " <option>\\n" after it

``ChatPrompts`` renders the same parts through a tokenizer's chat template (system = bank prefix, user = the
query, the cue opening the assistant turn); ``PlainPrompts`` is the layout above.

Everything here is pure string work, deterministic, and generic over environment families: options are
compared as normalised strings, so the same parser serves MiniGrid plans and Crafter sub-goals.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from llmrl.envs.registry import builtin_specs, family_spec
from llmrl.messages import PromptBankSnapshot, TeacherQuery


# Section headers, kept together so the tiny test LM's vocabulary can include them (see template_text()).
_EXAMPLES = "Examples:"
_FEEDBACK = "Feedback from the student:"
_SUBGOAL_SUCCESS = "Sub-goal success rates:"
_COMPREHENSION = "Comprehension score:"
_STATE = "State:"
_CONTEXT = "Context:"
# Not in template_text(): the tiny test LM reads it as [UNK], and a new word would re-draw its random weights.
ANALYSIS = "Analysis:"


def option_word(family: str) -> tuple[str, str]:
    """(singular, plural) name of an option in ``family``'s prompts (``FamilySpec.option_word``): a plan in
    MiniGrid (LLM4Teach), a sub-goal in Crafter (AdaRefiner)."""
    return family_spec(family).option_word


def answer_cue(family: str) -> str:
    """The line the prompt ends with; the LM's answer follows it on the same line."""
    return option_word(family)[0].capitalize() + ":"


def bank_prefix(bank: PromptBankSnapshot) -> str:
    """The part of every prompt that depends on the prompt bank only (identical across queries)."""
    parts: list[str] = []
    if bank.task_description.strip():
        parts.append(bank.task_description.strip())
    if bank.exemplars:
        parts.append(_EXAMPLES + "\n" + "\n\n".join(e.strip() for e in bank.exemplars))
    if bank.feedback_lines:
        parts.append(_FEEDBACK + "\n" + "\n".join(f"- {line.strip()}" for line in bank.feedback_lines))
    if bank.subgoal_success:
        rates = "; ".join(f"{name} {rate:.2f}" for name, rate in bank.subgoal_success)
        parts.append(f"{_SUBGOAL_SUCCESS} {rates}.")
    if bank.comprehension is not None:
        parts.append(f"{_COMPREHENSION} {bank.comprehension:.2f}.")
    return "\n\n".join(parts)


def query_body(query: TeacherQuery) -> str:
    """The query's own part of a prompt: state, context, the analyst's analysis (if any) and allowed options (no
    answer cue)."""
    _, plural = option_word(query.family)
    lines = [f"{_STATE} {query.state_text.strip()}"]
    if query.context.strip():
        lines.append(f"{_CONTEXT} {query.context.strip()}")
    if query.analysis.strip():
        lines.append(f"{ANALYSIS} {query.analysis.strip()}")
    lines.append(f"Allowed {plural}:")
    lines.extend(f"- {option}" for option in query.options)
    return "\n".join(lines)


def build_prompt(query: TeacherQuery, bank: PromptBankSnapshot) -> str:
    """The full prompt for one query: bank prefix, then state, context, allowed options and the answer cue."""
    return shared_prefix(bank) + query_body(query) + "\n" + answer_cue(query.family)


def shared_prefix(bank: PromptBankSnapshot) -> str:
    """The text every ``build_prompt`` of this bank starts with (the bank prefix and the blank line after it)."""
    prefix = bank_prefix(bank)
    return f"{prefix}\n\n" if prefix else ""


class PlainPrompts:
    """Prompts as plain text (``build_prompt``): for base models and tokenizers without a chat template."""

    def shared_prefix(self, bank: PromptBankSnapshot) -> str:
        return shared_prefix(bank)

    def build(self, query: TeacherQuery, bank: PromptBankSnapshot) -> str:
        return build_prompt(query, bank)


# Stands for the query while the template renders, so the bank's part can be cut off as a string prefix.
_QUERY_SLOT = "\u2063llmrl-query-slot\u2063"


class ChatPrompts:
    """Prompts rendered through a chat template, as an instruction-tuned model was trained to read them.

    system = the bank prefix, user = the query's body, then the template's generation prompt, and the answer
    cue opens the assistant turn (``...<|im_start|>assistant\\nPlan:``), so options are still scored as the
    continuation after the cue. The template is rendered once per bank with a placeholder for the user message
    and split there: the part before it depends on the bank only and is a string prefix of every prompt of
    that bank (the hf backend computes it once per bank version). ``render(messages)`` is the tokenizer's
    ``apply_chat_template(messages, tokenize=False, add_generation_prompt=True)``; it is called here once, so
    a template that fails to render fails when the backend is built.
    """

    def __init__(self, render: Callable[[list[dict[str, str]]], str]) -> None:
        self._render = render
        self._parts: tuple[str, str, str] | None = None  # (bank prefix, text before the query, text after it)
        self._split(PromptBankSnapshot(version=0, task_description="A task."))

    def _split(self, bank: PromptBankSnapshot) -> tuple[str, str]:
        prefix = bank_prefix(bank)
        if self._parts is None or self._parts[0] != prefix:
            text = self._render([{"role": "system", "content": prefix}, {"role": "user", "content": _QUERY_SLOT}])
            if not isinstance(text, str) or text.count(_QUERY_SLOT) != 1:
                raise ValueError("the chat template does not render the user message exactly once")
            head, tail = text.split(_QUERY_SLOT)
            self._parts = (prefix, head, tail)
        return self._parts[1], self._parts[2]

    def shared_prefix(self, bank: PromptBankSnapshot) -> str:
        return self._split(bank)[0]

    def build(self, query: TeacherQuery, bank: PromptBankSnapshot) -> str:
        head, tail = self._split(bank)
        return head + query_body(query) + tail + answer_cue(query.family)


def template_text() -> str:
    """Every fixed word ``build_prompt`` can emit (for building a word-level tokenizer's vocabulary)."""
    words = [_EXAMPLES, _FEEDBACK, _SUBGOAL_SUCCESS, _COMPREHENSION, _STATE, _CONTEXT, "- ; . :"]
    for singular, plural in dict.fromkeys(spec.option_word for spec in builtin_specs()):
        words += [f"Allowed {plural}:", singular.capitalize() + ":"]
    return "\n".join(words)


# Markers after which LM answers commonly put their choice ("Action: {go to <key>, pick up <key>}" in LLM4Teach).
_MARKER = re.compile(r"\b(?:action|plan|sub-?goal|answer|choice|option)s?\s*:", re.IGNORECASE)
_BRACES = re.compile(r"\{([^{}]*)\}")
_DROP = re.compile(r"[<>{}\[\]()\"'`*]")
_SPACE = re.compile(r"\s+")
_COMMA = re.compile(r"\s*,\s*")


def normalize_option(text: str) -> str:
    """Canonical comparison form: lower case, no brackets/quotes, single spaces, ", " between plan steps."""
    text = _DROP.sub(" ", text.lower())
    text = _COMMA.sub(", ", _SPACE.sub(" ", text)).strip()
    return text.strip(" .;:!,")


def _first_line(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            return line
    return ""


def _candidates(text: str) -> list[str]:
    """Spans of ``text`` that may hold the answer, most likely first."""
    found = [_first_line(text)]
    for m in _MARKER.finditer(text):
        after = text[m.end():]
        # "Action:\n{...}" puts the answer on the next line.
        found.append(_first_line(after))
    out = []
    for span in found:
        braced = _BRACES.search(span)
        out.append(braced.group(1) if braced else span)
    return out


def parse_option(text: str, options: tuple[str, ...]) -> str | None:
    """The admissible option an LM answer names, or None.

    Tolerant of case, angle brackets, braces, quotes, whitespace and a leading chain of thought: the first
    non-empty line is tried first (a completion right after the answer cue), then the text after each
    "Action:" / "Plan:" / "Sub-goal:" marker. A span counts only if it equals an option after normalisation,
    so a partial or extra-step answer is rejected rather than guessed.
    """
    if not text or not options:
        return None
    canon: dict[str, str] = {}
    for option in options:
        canon.setdefault(normalize_option(option), option)
    for span in _candidates(text):
        key = normalize_option(span)
        if key in canon:
            return canon[key]
    return None
