"""serving_config/k8s: valid against the Kubernetes schemas, and wired to each other and to the image."""

from __future__ import annotations

import json
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "serving_config" / "k8s"
# The newest Kubernetes release whose schemas kubernetes-validate bundles (1.37 with kubernetes-validate 1.37).
KUBERNETES_VERSION = kubernetes_validate.latest_version()


def documents() -> list[tuple[str, dict]]:
    docs = []
    for path in sorted(K8S.glob("*.yaml")):
        docs += [(path.name, doc) for doc in yaml.safe_load_all(path.read_text()) if doc]
    return docs


def by_kind(kind: str) -> list[dict]:
    return [doc for _, doc in documents() if doc["kind"] == kind]


@pytest.mark.parametrize("name, doc", documents(), ids=lambda v: v if isinstance(v, str) else v["kind"])
def test_manifest_is_valid_against_kubernetes_schema(name, doc):
    kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_validator_rejects_a_broken_manifest():
    (deployment,) = by_kind("Deployment")
    broken = json.loads(json.dumps(deployment))
    broken["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["grpc"]["port"] = "grpc"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


def test_schemas_are_recent_enough_for_grpc_probes_and_sleep_hooks():
    major, minor = (int(part) for part in KUBERNETES_VERSION.split(".")[:2])
    assert (major, minor) >= (1, 30)


def test_all_kinds_present():
    kinds = sorted(doc["kind"] for _, doc in documents())
    assert kinds == ["ConfigMap", "Deployment", "HorizontalPodAutoscaler", "PodDisruptionBudget", "Service", "Service"]


def test_deployment_requests_gpus_and_probes_grpc_health_on_8500():
    (deployment,) = by_kind("Deployment")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert container["resources"]["requests"]["nvidia.com/gpu"] == 1
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["grpc"]["port"] == 8500
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    assert ports == {"grpc": 8500, "http": 8501}


def test_services_and_budget_select_the_deployment_pods():
    (deployment,) = by_kind("Deployment")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    selectors = [svc["spec"]["selector"] for svc in by_kind("Service")]
    selectors.append(by_kind("PodDisruptionBudget")[0]["spec"]["selector"]["matchLabels"])
    for selector in selectors:
        assert selector.items() <= pod_labels.items()
    headless = [svc for svc in by_kind("Service") if svc["spec"].get("clusterIP") == "None"]
    assert len(headless) == 1 and headless[0]["spec"]["ports"][0]["port"] == 8500


def test_autoscaler_scales_the_deployment_on_a_pods_metric():
    (hpa,) = by_kind("HorizontalPodAutoscaler")
    (deployment,) = by_kind("Deployment")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    assert [metric["type"] for metric in hpa["spec"]["metrics"]] == ["Pods"]
    budget = by_kind("PodDisruptionBudget")[0]["spec"]["maxUnavailable"]
    assert hpa["spec"]["minReplicas"] > budget  # a drain never takes the last replica


def test_configmap_carries_the_serving_config_files_mounted_where_the_image_reads_them():
    (configmap,) = by_kind("ConfigMap")
    for name, content in configmap["data"].items():
        assert content == (REPO / "serving_config" / name).read_text(), f"{name} differs from serving_config/{name}"
    assert set(configmap["data"]) == {"models.config", "batching_parameters.txt", "monitoring.config"}
    (deployment,) = by_kind("Deployment")
    pod = deployment["spec"]["template"]["spec"]
    volume = next(v for v in pod["volumes"] if v.get("configMap", {}).get("name") == configmap["metadata"]["name"])
    mount = next(m for m in pod["containers"][0]["volumeMounts"] if m["name"] == volume["name"])
    dockerfile = (REPO / "Dockerfile.serving").read_text()
    for name in configmap["data"]:
        assert f"{mount['mountPath']}/{name}" in dockerfile


def test_committed_configmap_is_what_vswin_config_configmap_generates():
    from vswin.serving.k8s_config import configmap_yaml

    assert (K8S / "configmap.yaml").read_text() == configmap_yaml(REPO / "serving_config"), (
        "serving_config/k8s/configmap.yaml is stale: run `vswin config configmap`"
    )


def test_configmap_check_flags_a_stale_copy(tmp_path, capsys):
    from vswin.cli import main

    out = tmp_path / "configmap.yaml"
    args = ["config", "configmap", "--config-dir", str(REPO / "serving_config"), "--out", str(out)]
    assert main([*args, "--check"]) == 1  # missing
    assert main(args) == 0
    assert main([*args, "--check"]) == 0
    out.write_text(out.read_text().replace("max_batch_size { value: 8 }", "max_batch_size { value: 16 }"))
    assert main([*args, "--check"]) == 1
    assert "is stale: run `vswin config configmap`" in capsys.readouterr().err
    assert yaml.safe_load((K8S / "configmap.yaml").read_text())["data"]["batching_parameters.txt"] == (
        REPO / "serving_config" / "batching_parameters.txt"
    ).read_text()


def test_pods_keep_the_xla_cache_where_the_image_points_tensorflow():
    (deployment,) = by_kind("Deployment")
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    env = {item["name"]: item["value"] for item in container["env"]}
    flag = "--tf_xla_persistent_cache_directory="
    assert env["TF_XLA_FLAGS"].startswith(flag)
    cache_dir = env["TF_XLA_FLAGS"][len(flag):]
    mount = next(m for m in container["volumeMounts"] if m["mountPath"] == cache_dir)
    assert not mount.get("readOnly")
    assert any(volume["name"] == mount["name"] for volume in pod["volumes"])
    assert f'TF_XLA_FLAGS="{flag}{cache_dir}"' in (REPO / "Dockerfile.serving").read_text()
