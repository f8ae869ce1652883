"""The shipped cluster configs are valid: `ray up` configs pass Ray's own schema, KubeRay manifests ask for
this Ray version and token auth, and every docforge command in them parses with docforge's own CLI."""

import shlex
from pathlib import Path

import pytest
import ray
import yaml

from pipelines.cli import build_parser

CLUSTER = Path(__file__).resolve().parents[1] / "cluster"
KUBERAY = sorted((CLUSTER / "kuberay").glob("*.yaml"))


def docforge_commands(command: str) -> list[list[str]]:
    """`docforge ...` argv lists in a command line, the one after `docforge launch ... --` included."""
    argv = shlex.split(command)
    assert argv[0] == "docforge", command
    args = argv[1:]
    if args[0] == "launch":
        inner = args.index("--")
        return [args[:inner], *docforge_commands(shlex.join(args[inner + 1:]))]
    return [args]


@pytest.mark.parametrize("name", ["aws.yaml", "gcp.yaml"])
def test_ray_up_configs_pass_rays_schema_and_carry_the_token(name):
    from ray.autoscaler._private.util import prepare_config, validate_config

    config = yaml.safe_load((CLUSTER / name).read_text())
    validate_config(prepare_config(config))
    assert set(config["available_node_types"]) == {"head", "cpu_worker", "gpu_worker"}
    assert config["available_node_types"]["gpu_worker"]["resources"]["GPU"] > 0
    assert config["available_node_types"]["head"]["resources"] == {"CPU": 0}
    assert config["file_mounts"]["~/.ray/auth_token"] == "~/.ray/auth_token"
    assert any(f"ray[default,data,train]=={ray.__version__}" in c for c in config["setup_commands"])
    assert any("install-system-packages.sh" in c for c in config["setup_commands"])
    for command in config["head_start_ray_commands"] + config["worker_start_ray_commands"]:
        assert "RAY_AUTH_MODE=token" in command


@pytest.mark.parametrize("path", KUBERAY, ids=[p.name for p in KUBERAY])
def test_kuberay_manifests_use_this_ray_with_token_auth_and_valid_docforge_commands(path):
    manifest = yaml.safe_load(path.read_text())
    assert manifest["apiVersion"] == "ray.io/v1"
    spec = manifest["spec"] if manifest["kind"] == "RayCluster" else manifest["spec"]["rayClusterSpec"]
    assert spec["rayVersion"] == ray.__version__ and spec["authOptions"] == {"mode": "token"}
    assert spec["headGroupSpec"]["rayStartParams"]["num-cpus"] == "0"
    if manifest["kind"] == "RayJob":
        parser = build_parser()
        for argv in docforge_commands(manifest["spec"]["entrypoint"]):
            parser.parse_args(argv)  # exits (fails the test) on a flag docforge does not have


def test_the_kuberay_examples_cover_a_cluster_a_doc2md_build_and_a_training_run():
    kinds = {p.name: yaml.safe_load(p.read_text())["kind"] for p in KUBERAY}
    assert kinds == {"raycluster.yaml": "RayCluster", "rayjob-doc2md.yaml": "RayJob", "rayjob-train.yaml": "RayJob"}
    train = yaml.safe_load((CLUSTER / "kuberay" / "rayjob-train.yaml").read_text())
    assert docforge_commands(train["spec"]["entrypoint"])[-1][0] == "train"
    doc2md = yaml.safe_load((CLUSTER / "kuberay" / "rayjob-doc2md.yaml").read_text())
    assert docforge_commands(doc2md["spec"]["entrypoint"])[0][:2] == ["build", "doc2md"]
