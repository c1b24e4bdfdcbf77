from pathlib import Path

import pytest

from llmrl.config import ConfigError, load_config


def test_defaults_and_overrides_are_typed():
    cfg = load_config(None, ["teacher.backend=off", "run.seed=3", "model.conv_channels=[8,16]", "feedback.enabled=false"])
    assert cfg.teacher.backend == "off"  # YAML 1.1 would read "off" as False
    assert cfg.run.seed == 3
    assert cfg.model.conv_channels == (8, 16)
    assert cfg.feedback.enabled is False


@pytest.mark.parametrize(
    "override, fragment",
    [
        ("teacher.foo=1", "unknown config key 'teacher.foo'"),
        ("nope=1", "unknown config key 'nope'"),
        ("teacher.backend=gpt", "teacher.backend"),
        ("run.seed=x", "run.seed"),
        ("ppo.lr=-1", "ppo.lr"),
        ("teacher.error_rate=1.5", "teacher.error_rate"),
        ("teacher=3", "teacher"),
        ("teacher.backend=hf", "teacher.hf.model"),
        ("env.room_min=11", "env.room_min"),
        ("env.room_min=4", "env.room_min"),
        ("feedback.credit=advantage", "feedback.credit: must be one of plan, episode"),
        ("teacher.prompt_style=fancy", "teacher.prompt_style: must be one of plain, llm4teach"),
        ("teacher.hf.chat_template=maybe", "teacher.hf.chat_template: must be one of auto, on, off"),
        ("teacher.bank_min_interval_s=-1", "teacher.bank_min_interval_s: must be >= 0"),
        ("teacher.rescore_recent=-1", "teacher.rescore_recent: must be >= 0"),
        ("teacher.rescore_recent=2049", "teacher.rescore_recent: must be <= teacher.cache_size / 2 (2048)"),
        ("teacher.rescore_batch_size=0", "teacher.rescore_batch_size: must be > 0"),
        ("teacher.rescore_max_busy=0", "teacher.rescore_max_busy: must be > 0"),
        ("teacher.rescore_max_busy=1.5", "teacher.rescore_max_busy: must be within [0, 1]"),
        ("teacher.hf.torch_threads=-1", "teacher.hf.torch_threads: must be >= 0"),
        ("garbage", "expected key=value"),
    ],
)
def test_bad_values_name_the_key(override, fragment):
    with pytest.raises(ConfigError) as err:
        load_config(None, [override])
    assert fragment in str(err.value)
    assert "\n" not in str(err.value)


def test_yaml_file_and_missing_file(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("env:\n  name: DoorKey-5x5\nteacher:\n  backend: off\n  mode: hard\n")
    cfg = load_config(f, ["teacher.mode=soft"])
    assert (cfg.env.name, cfg.teacher.backend, cfg.teacher.mode) == ("DoorKey-5x5", "off", "soft")
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "missing.yaml")
    (tmp_path / "bad.yaml").write_text("env: [unclosed\n")
    with pytest.raises(ConfigError, match="invalid YAML"):
        load_config(tmp_path / "bad.yaml")


def test_import_llmrl_is_light():
    import subprocess
    import sys

    code = "import sys, llmrl; bad=[m for m in ('ray','torch','vllm') if m in sys.modules]; print(bad)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"


CONFIGS = Path(__file__).resolve().parents[1] / "configs"


@pytest.mark.parametrize("path", sorted(CONFIGS.rglob("*.yaml")), ids=lambda p: str(p.relative_to(CONFIGS)))
def test_every_shipped_config_loads(path):
    cfg = load_config(path)
    assert cfg.env.name


@pytest.mark.parametrize("path", sorted(CONFIGS.rglob("*smollm.yaml")), ids=lambda p: p.name)
def test_smollm_configs_use_the_short_name(path):
    cfg = load_config(path)
    assert (cfg.teacher.backend, cfg.teacher.hf.model, cfg.teacher.hf.device) == ("hf", "smollm2-135m", "cpu")


def test_smollm_configs_cover_the_tasks():
    names = {load_config(p).env.name for p in CONFIGS.rglob("*smollm.yaml")}
    assert names == {"SimpleDoorKey", "LavaDoorKey", "ColoredDoorKey", "GoToRedBallNoDists", "Crafter"}


def test_llm4teach_prompt_style_is_minigrid_only():
    from llmrl.envs.minigrid.text import task_description
    from llmrl.training.graph import task_description_for

    cfg = load_config(None, ["teacher.prompt_style=llm4teach"])
    assert task_description_for(cfg) == task_description("SimpleDoorKey", "llm4teach")  # what the bank starts with
    with pytest.raises(ConfigError, match="teacher.prompt_style: Crafter has no .llm4teach. task prompt"):
        load_config(CONFIGS / "crafter" / "default.yaml", ["teacher.prompt_style=llm4teach"])


def test_exponent_floats_are_numbers_and_the_adapter_section_is_validated():
    # YAML 1.1 reads "2e-4" as a string; an override of a learning rate must still work.
    assert load_config(None, ["adapter.lr=2e-4", "ppo.lr=5e-4"]).adapter.lr == pytest.approx(2e-4)
    for bad, key in (["adapter.lr=nan"], "adapter.lr"), (["adapter.lr=fast"], "adapter.lr"), \
            (["adapter.heldout_frac=0"], "adapter.heldout_frac"), (["adapter.r=0"], "adapter.r"), \
            (["adapter.role=critic"], "adapter.role"), (["adapter.enabled=true"], "adapter.enabled"), \
            (["adapter.pair_label=guessed"], "adapter.pair_label"), (["adapter.loss=mse"], "adapter.loss"), \
            (["adapter.accept=vibes"], "adapter.accept"), (["adapter.min_label_votes=0"], "adapter.min_label_votes"):
        with pytest.raises(ConfigError, match=key):
            load_config(None, bad)
    with pytest.raises(ConfigError, match="adapter.base_model"):
        load_config(None, ["adapter.enabled=true", "teacher.backend=openai", "teacher.openai.base_url=http://h/v1",
                           "teacher.openai.model=m"])
    with pytest.raises(ConfigError, match="teacher.vllm.enable_lora"):
        load_config(None, ["adapter.enabled=true", "teacher.backend=vllm", "teacher.vllm.model=m"])
    cfg = load_config(None, ["adapter.enabled=true", "teacher.backend=hf", "teacher.hf.model=/m"])
    assert cfg.adapter.enabled and (cfg.adapter.r, cfg.adapter.alpha, cfg.adapter.epochs) == (64, 16.0, 1)
    assert cfg.adapter.pair_label == "advised"
    with pytest.raises(ConfigError, match="adapter.loss: only 'nll' with adapter.role=analyst"):
        load_config(None, ["adapter.enabled=true", "teacher.backend=hf", "teacher.hf.model=/m",
                           "adapter.role=analyst", "adapter.loss=choice"])
    with pytest.raises(ConfigError, match="adapter.pair_label: only 'advised' with adapter.role=analyst"):
        load_config(None, ["adapter.enabled=true", "teacher.backend=hf", "teacher.hf.model=/m",
                           "adapter.role=analyst", "adapter.pair_label=achieved"])
    with pytest.raises(ConfigError, match="adapter.accept: only 'heldout_loss' with adapter.role=analyst"):
        load_config(None, ["adapter.enabled=true", "teacher.backend=hf", "teacher.hf.model=/m",
                           "adapter.role=analyst", "adapter.accept=plan_accuracy"])
    assert cfg.adapter.accept == "heldout_loss"
    with pytest.raises(ConfigError, match="adapter.min_label_votes: only with adapter.pair_label=achieved"):
        load_config(None, ["adapter.enabled=true", "teacher.backend=hf", "teacher.hf.model=/m",
                           "adapter.min_label_votes=20"])
    assert load_config(None, ["adapter.enabled=true", "teacher.backend=hf", "teacher.hf.model=/m",
                              "adapter.pair_label=achieved", "adapter.min_label_votes=20"]).adapter.min_label_votes == 20


def test_the_adapter_renders_its_pairs_as_the_teacher_backend_renders_prompts():
    from llmrl.config import teacher_chat_template

    smollm = Path(__file__).resolve().parents[1] / "configs" / "minigrid" / "simple_doorkey_smollm.yaml"
    assert teacher_chat_template(load_config(smollm)) == "auto"  # SmolLM2's chat template, when it has one
    assert teacher_chat_template(load_config(smollm, ["teacher.hf.chat_template=off"])) == "off"
    assert teacher_chat_template(load_config(None, ["teacher.backend=vllm", "teacher.vllm.model=m"])) == "off"


def test_teacher_cpu_nice_is_a_unix_niceness():
    assert load_config(None, ["teacher.cpu_nice=10"]).teacher.cpu_nice == 10
    with pytest.raises(ConfigError, match="teacher.cpu_nice"):
        load_config(None, ["teacher.cpu_nice=25"])
