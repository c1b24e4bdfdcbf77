"""State text: what it says on hand-built and seeded grids, colour abstraction, caching, round trip."""

from minigrid.core.world_object import Key
from minigrid_scenes import follow, scene

from llmrl.config import EnvConfig
from llmrl.envs.minigrid.adapter import make_task
from llmrl.envs.minigrid.family import MINIGRID_TASKS
from llmrl.envs.minigrid.text import Facts, ObjRef, parse_state_text, render_state_text, task_description

ROOM = [
    "######",
    "#>...#",
    "#..k.#",
    "#....D",
    "######",
]


def test_simple_doorkey_texts():
    assert scene(ROOM).state_text() == "Agent sees <key>, <door (locked)>, holds <nothing>."
    assert scene(ROOM, carrying=Key("yellow")).state_text() == "Agent sees <key>, <door (locked)>, holds <key>."
    t = scene(ROOM)
    follow(t, "go to key, pick up key")
    assert t.state_text() == "Agent sees <door (locked)>, holds <key>."


def test_partial_view_sees_only_what_is_in_front():
    # Facing a wall from a corner with a 3-cell view: the key and the door are out of sight.
    t = scene(["######", "#^...#", "#..k.#", "#....D", "######"], reveal=False)
    assert t.state_text() == "Agent sees <nothing>, holds <nothing>."


def test_seeded_reset_text_is_well_formed_for_every_task():
    for name in MINIGRID_TASKS:
        t = make_task(EnvConfig(name=name), seed=1)
        t.reset()
        facts = parse_state_text(t.state_text())
        assert facts is not None and facts.held is None, t.state_text()


def test_ball_keeps_its_real_colour():
    t = scene(["#####", "#>.b#", "#...#", "#...#", "#####"], task="GoToRedBallNoDists")
    assert t.state_text() == "Agent sees <red ball>, holds <nothing>."


COLOURED_A = [
    "######",
    "#>.r.#",
    "#....#",
    "#.k..#",
    "#....D",
    "######",
]
# The same room with the two colours swapped.
COLOURED_B = [row.replace("r", "x").replace("k", "r").replace("x", "k").replace("D", "R") for row in COLOURED_A]


def test_colours_are_abstracted_in_colored_doorkey():
    a = scene(COLOURED_A, task="ColoredDoorKey")
    b = scene(COLOURED_B, task="ColoredDoorKey")
    text = "Agent sees <color1 key>, <color2 key>, <color1 door (locked)>, holds <nothing>."
    assert a.state_text() == b.state_text() == text
    assert a.options() == b.options()
    for t, colour in ((a, "yellow"), (b, "red")):
        follow(t, "go to color1 key, pick up color1 key")
        assert t.raw.carrying.color == colour
        assert t.state_text() == "Agent sees <color2 key>, <color1 door (locked)>, holds <color1 key>."


def test_text_is_cached_until_knowledge_changes():
    t = scene(ROOM, reveal=False)
    first = t.state_text()
    assert t.state_text() is first
    version = t.knowledge.version
    t.step(6)  # "done": nothing changes
    assert t.knowledge.version == version and t.state_text() is first


def test_render_parse_round_trip():
    facts = Facts.make(
        [ObjRef("door", "color2", "locked"), ObjRef("key", "color1"), ObjRef("goal")], ObjRef("key", "color2")
    )
    text = render_state_text(facts)
    assert text == "Agent sees <color1 key>, <color2 door (locked)>, <goal>, holds <color2 key>."
    assert parse_state_text(text) == facts
    assert parse_state_text("Agent sees <nothing>, holds <nothing>.") == Facts((), None)
    assert parse_state_text("the agent is happy") is None


def test_task_descriptions_name_the_plan_vocabulary():
    for name in MINIGRID_TASKS:
        text = task_description(name)
        assert "explore" in text and "go to <" in text
        if name != "GoToRedBallNoDists":
            assert all(verb in text for verb in ("pick up <", "drop <", "open <"))


def test_llm4teach_prompts_follow_the_paper_and_their_examples_are_right():
    """teacher.prompt_style=llm4teach: LLM4Teach's task sentence and a chain-of-thought example whose answer
    is what the scripted planner would say in the example's state (a wrong example would teach the LM wrong)."""
    import re

    from llmrl.envs.minigrid.planner import admissible_options, correct_option
    from llmrl.envs.minigrid.plans import format_plan, parse_plan

    for name in MINIGRID_TASKS:
        text = task_description(name, "llm4teach")
        assert text != task_description(name) and "there is an agent whose task is to" in text
        state = re.search(r"^State: (.*)$", text, re.M).group(1)
        action = re.search(r"^Action: (\{.*\})$", text, re.M).group(1)
        options = admissible_options(parse_state_text(state))
        assert format_plan(parse_plan(action)) == correct_option(state, options)
    assert task_description("SimpleDoorKey", "llm4teach").startswith(
        "In a locked 2D grid room, there is an agent whose task is to open the door. The door can only be opened "
        "while agent holds the key. The agent can perform the following actions: explore, go to <object>, "
        "pick up <object>, drop <object>, or open <object>.")
    assert task_description("SimpleDoorKey", "llm4teach").endswith("Action: {go to <key>, pick up <key>}")


def test_the_task_adapter_writes_the_configured_style():
    task = make_task(EnvConfig(name="SimpleDoorKey"), seed=0)
    try:
        assert task.task_description("llm4teach") == task_description("SimpleDoorKey", "llm4teach")
        assert task.task_description() == task_description("SimpleDoorKey")
    finally:
        task.close()
