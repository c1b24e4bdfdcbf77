"""Lint the deployment files that cannot be exercised here (no cluster, no Docker engine)."""

import importlib.util
import json
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
CLUSTER = ROOT / "cluster"
DOCKER = ROOT / "docker"
RAY_VERSION = "2.60.0"
ENTRYPOINT = "python -m llmrl.job configs/minigrid/simple_doorkey.yaml run.out_dir=/mnt/shared/runs"


def _docs(path: Path) -> list:
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


def _one(path: Path) -> dict:
    (doc,) = _docs(path)
    return doc


def test_every_cluster_yaml_parses():
    files = sorted(CLUSTER.rglob("*.yaml"))
    assert {f.relative_to(CLUSTER).as_posix() for f in files} >= {
        "ray-cluster.yaml", "runtime_env.yaml", "kuberay/raycluster.yaml", "kuberay/rayjob.yaml"}
    for f in files:
        assert _docs(f), f"{f} is empty"


def test_ray_up_config_has_the_node_types_and_matches_rays_schema():
    cfg = _one(CLUSTER / "ray-cluster.yaml")
    assert cfg["provider"]["type"]
    types = cfg["available_node_types"]
    assert cfg["head_node_type"] in types
    assert {"head", "cpu", "gpu"} <= set(types)
    for name, t in types.items():
        assert "node_config" in t and "resources" in t, name
    assert types["gpu"]["min_workers"] >= 1  # GPUs up before the job's resource check
    assert cfg["max_workers"] >= sum(t.get("max_workers", 0) for n, t in types.items() if n != cfg["head_node_type"])
    assert cfg["docker"]["image"].endswith("llmrl:gpu")
    # Validate against the schema `ray up` itself uses, found without importing Ray.
    import jsonschema  # a dependency of ray, which llmrl requires

    spec = importlib.util.find_spec("ray")
    assert spec is not None and spec.submodule_search_locations, "ray is a dependency of llmrl"
    schema_path = Path(next(iter(spec.submodule_search_locations))) / "autoscaler" / "ray-schema.json"
    jsonschema.validate(cfg, json.loads(schema_path.read_text()))


def test_placeholders_are_documented():
    readme = (CLUSTER / "README.md").read_text()
    for f in CLUSTER.rglob("*.yaml"):
        for ph in set(re.findall(r"<[^>\s]+>", f.read_text())):
            assert ph.startswith("<your-"), f"{f.name}: placeholder {ph} should read <your-...>"
            assert ph in readme, f"{f.name}: placeholder {ph} is not explained in cluster/README.md"


def _check_group(group: dict, gpu: bool) -> None:
    (container,) = group["template"]["spec"]["containers"]
    assert container["image"] == "llmrl:gpu"
    limits = container["resources"]["limits"]
    assert ("nvidia.com/gpu" in limits) == gpu
    assert all(isinstance(v, str) for v in group.get("rayStartParams", {}).values())  # KubeRay wants strings
    mounts = {m["mountPath"] for m in container.get("volumeMounts", [])}
    assert "/mnt/shared" in mounts


def _check_cluster_spec(spec: dict) -> None:
    assert spec["rayVersion"] == RAY_VERSION
    _check_group(spec["headGroupSpec"], gpu=False)
    groups = {g["groupName"]: g for g in spec["workerGroupSpecs"]}
    assert set(groups) == {"cpu", "gpu"}
    _check_group(groups["cpu"], gpu=False)
    _check_group(groups["gpu"], gpu=True)
    for g in groups.values():
        assert g["minReplicas"] <= g["replicas"] <= g["maxReplicas"]
    assert groups["gpu"]["minReplicas"] >= 1


def test_kuberay_raycluster():
    rc = _one(CLUSTER / "kuberay" / "raycluster.yaml")
    assert rc["apiVersion"] == "ray.io/v1" and rc["kind"] == "RayCluster"
    assert rc["metadata"]["name"]
    _check_cluster_spec(rc["spec"])


def test_kuberay_rayjob_matches_the_raycluster():
    job = _one(CLUSTER / "kuberay" / "rayjob.yaml")
    assert job["apiVersion"] == "ray.io/v1" and job["kind"] == "RayJob"
    spec = job["spec"]
    assert spec["entrypoint"] == ENTRYPOINT
    _check_cluster_spec(spec["rayClusterSpec"])
    assert spec["rayClusterSpec"] == _one(CLUSTER / "kuberay" / "raycluster.yaml")["spec"]
    renv = yaml.safe_load(spec["runtimeEnvYAML"])
    _check_runtime_env(renv)
    assert renv["working_dir"] == "/home/ray/llmrl"  # where the Dockerfiles put the checkout


def test_shared_volume_claim_is_the_one_mounted():
    pvc = _one(CLUSTER / "kuberay" / "shared-pvc.yaml")
    assert pvc["kind"] == "PersistentVolumeClaim" and "ReadWriteMany" in pvc["spec"]["accessModes"]
    rc = _one(CLUSTER / "kuberay" / "raycluster.yaml")
    volumes = rc["spec"]["headGroupSpec"]["template"]["spec"]["volumes"]
    claims = {v["persistentVolumeClaim"]["claimName"] for v in volumes if "persistentVolumeClaim" in v}
    assert claims == {pvc["metadata"]["name"]}


RUNTIME_ENV_KEYS = {"working_dir", "excludes", "env_vars", "pip", "py_modules", "conda", "config"}


def _check_runtime_env(renv: dict) -> None:
    assert set(renv) <= RUNTIME_ENV_KEYS, set(renv) - RUNTIME_ENV_KEYS
    assert isinstance(renv["working_dir"], str)
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in renv.get("env_vars", {}).items())
    assert renv.get("env_vars", {}).get("PYTHONUNBUFFERED") == "1"
    assert not any(str(p).split("=")[0].split("[")[0].strip().lower() in ("torch", "vllm") for p in renv.get("pip", []))


def test_runtime_env_file():
    renv = _one(CLUSTER / "runtime_env.yaml")
    _check_runtime_env(renv)
    assert {".venv/", "runs/", ".git/"} <= set(renv["excludes"])


def _instructions(path: Path) -> list[str]:
    """Dockerfile instructions with comments dropped and continuation lines joined."""
    kept = [ln for ln in path.read_text().splitlines() if not ln.lstrip().startswith("#")]
    text = re.sub(r"\\\n", " ", "\n".join(kept))
    return [ln.strip() for ln in text.splitlines() if ln.strip()]


@pytest.mark.parametrize("kind,base", [("gpu", f"rayproject/ray:{RAY_VERSION}-py311-gpu"),
                                       ("cpu", f"rayproject/ray:{RAY_VERSION}-py311")])
def test_dockerfile(kind, base):
    lines = _instructions(DOCKER / f"Dockerfile.{kind}")
    froms = [ln for ln in lines if ln.upper().startswith("FROM ")]
    assert froms == [f"FROM {base}"]
    runs = [ln for ln in lines if ln.upper().startswith("RUN ")]
    copy_idx = next(i for i, ln in enumerate(lines) if ln.upper().startswith("COPY ") and " . " in f"{ln} ")
    llmrl_idx = next(i for i, ln in enumerate(lines)
                     if ln.startswith("RUN ") and re.search(r"pip install[^&]* (\.|\"\.\[vllm\]\")( |$)", ln))
    assert copy_idx < llmrl_idx, "llmrl must be installed from the copied source"
    if kind == "gpu":
        assert '".[vllm]"' in lines[llmrl_idx]
        vllm_idx = next(i for i, ln in enumerate(lines) if ln.startswith("RUN ") and "vllm==" in ln)
        assert vllm_idx < llmrl_idx, "install vLLM first so its pinned torch is the one installed"
    else:
        torch_idx = next(i for i, ln in enumerate(lines) if "torch==" in ln and "--index-url" in ln)
        assert torch_idx < llmrl_idx, "install the CPU torch wheel before llmrl"
        assert "TORCH_VERSION=2.13.0" in " ".join(lines) and "whl/cpu" in " ".join(lines)
    assert all("ray==" not in ln or RAY_VERSION in ln for ln in runs)
    ignore = (DOCKER / f"Dockerfile.{kind}.dockerignore").read_text().split()
    assert {".venv", ".git", "runs"} <= set(ignore)
