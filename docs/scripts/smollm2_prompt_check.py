"""A first check of which prompt format SmolLM2 reads best (plan accuracy per distinct state).

    python docs/scripts/smollm2_prompt_check.py [CONFIG] [EPISODES]

Plays EPISODES seeded episodes of CONFIG's task with the scripted planner acting (its plan is the ground
truth), collects the distinct (state text, options) pairs, and asks the hf backend on ``smollm2-135m`` for
each under every (teacher.prompt_style, teacher.hf.chat_template) pair. Prints, per format, the share of
states whose top plan is the planner's and the mean probability given to it. The full measurement is
``llmrl bench teacher-quality``; this is the quick look that chose the SmolLM2 configs' defaults.
"""

from __future__ import annotations

import asyncio
import dataclasses
import sys
import time

from llmrl.config import load_config
from llmrl.envs.minigrid.planner import correct_option
from llmrl.envs.registry import make_task
from llmrl.messages import PromptBankSnapshot, TeacherQuery
from llmrl.teacher.backends.hf import HFBackend


def distinct_states(cfg, episodes: int) -> dict[str, tuple[str, ...]]:
    states: dict[str, tuple[str, ...]] = {}
    for ep in range(episodes):
        task = make_task(cfg.env, seed=ep)
        task.reset(seed=ep)
        for _ in range(cfg.env.max_steps):
            text, options = task.state_text(), tuple(task.options())
            states.setdefault(text, options)
            plan = correct_option(text, options)
            task.begin_option(plan)
            action = task.option_action(plan)
            _, _, term, trunc, _ = task.step(action if action is not None else 0)
            if term or trunc:
                break
        task.close()
    return states


def main(argv: list[str]) -> None:
    config = argv[0] if argv else "configs/minigrid/simple_doorkey_smollm.yaml"
    episodes = int(argv[1]) if len(argv) > 1 else 20
    cfg = load_config(config)
    states = distinct_states(cfg, episodes)
    print(f"{cfg.env.name}: {len(states)} distinct states from {episodes} episodes")
    for style in ("plain", "llm4teach"):
        task = make_task(cfg.env, seed=0)
        bank = PromptBankSnapshot(version=0, task_description=task.task_description(style))
        task.close()
        for chat in ("off", "on"):
            backend = HFBackend(dataclasses.replace(cfg.teacher.hf, chat_template=chat))
            queries = [TeacherQuery("minigrid", cfg.env.name, text, opts) for text, opts in states.items()]
            start = time.perf_counter()
            advice = asyncio.run(backend.advise(queries, bank))
            took = time.perf_counter() - start
            asyncio.run(backend.close())
            truth = [correct_option(q.state_text, q.options) for q in queries]
            right = [a.best() == t for a, t in zip(advice, truth)]
            mass = [a.probs[q.options.index(t)] for q, a, t in zip(queries, advice, truth)]
            print(f"prompt_style={style:9} chat_template={chat:3}  top plan correct {sum(right)}/{len(right)}"
                  f"  mean p(correct) {sum(mass) / len(mass):.3f}  ({took:.1f} s)")


if __name__ == "__main__":
    main(sys.argv[1:])
