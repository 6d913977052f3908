"""The contract module: each shared value defined once, the config files in step with it, free to import."""

from __future__ import annotations

import io
import re
import subprocess
import sys
from pathlib import Path

import pytest

from vswin import contract

REPO = Path(__file__).resolve().parents[1]


def test_batching_file_pads_to_the_contract_batch_plan():
    from google.protobuf import text_format
    from vswin.serving.config_protos import BatchingParameters

    params = text_format.Parse((REPO / "serving_config" / "batching_parameters.txt").read_text(), BatchingParameters())
    assert tuple(params.allowed_batch_sizes) == contract.ALLOWED_BATCH_SIZES
    assert params.max_batch_size.value == contract.MAX_BATCH_SIZE


# Literals that must appear in vswin/ only in contract.py: quoted names and the normalisation numbers.
_SHARED_LITERALS = [
    *(f'"{value}"' for value in (
        contract.SERVING_DEFAULT, contract.FEATURES_GRAPH, contract.FEATURES_XLA, contract.FEATURES_FLOAT,
        contract.CLASSIFY, contract.ATTENTION, contract.FRAMES, contract.IMAGES, contract.LOGITS,
        contract.PROBABILITIES, contract.TOP_K_LABELS, contract.METADATA_FILE, contract.WARMUP_FILE,
        contract.ASSETS_EXTRA,
    )),
    *(repr(value) for value in contract.MEAN + contract.STD),
]


@pytest.mark.parametrize("literal", _SHARED_LITERALS)
def test_shared_values_are_spelled_only_in_the_contract(literal):
    pattern = re.compile(re.escape(literal) + r"(?![\w.])")
    offenders = [
        f"{path.relative_to(REPO)}:{number}"
        for path in sorted((REPO / "vswin").rglob("*.py"))
        if path.name != "contract.py"
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if pattern.search(line.split("#")[0])
    ]
    assert not offenders, f"{literal} is spelled outside vswin/contract.py: {offenders}"


def test_contract_imports_nothing_heavy():
    code = "import sys, vswin.contract; print(sorted(m for m in ('numpy', 'tensorflow', 'grpc', 'keras') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    assert out.stdout.strip() == "[]"


def test_preprocessing_round_trips_through_its_dict():
    for preprocessing in (
        contract.video_preprocessing(),
        contract.video_preprocessing(sampling="segments", num_clips=1),
        contract.image_preprocessing(224),
        contract.image_preprocessing(384),
    ):
        assert contract.Preprocessing.from_dict(preprocessing.to_dict()) == preprocessing


def test_image_evaluation_crops_at_224_and_resizes_at_384():
    at_224, at_384 = contract.image_preprocessing(224), contract.image_preprocessing(384)
    assert (at_224.resize_to, at_224.resize_mode, at_224.interpolation) == (256, "short_side", "bicubic")
    assert (at_384.resize_to, at_384.resize_mode) == (384, "squash")


@pytest.mark.parametrize("bad", [
    {"family": "audio"}, {"sampling": "random"}, {"num_crops": 2}, {"crop_ratio": 0}, {"clip_len": 0},
    {"interpolation": "nearest"}, {"std": (1.0, 0.0, 1.0)},
])
def test_preprocessing_rejects_values_no_pipeline_has(bad):
    with pytest.raises(ValueError):
        contract.Preprocessing(**bad)


def test_input_names_per_family():
    assert (contract.uint8_input(contract.VIDEO), contract.float_input(contract.VIDEO)) == ("frames", "clips")
    assert (contract.uint8_input(contract.IMAGE), contract.float_input(contract.IMAGE)) == ("images", "images")
    with pytest.raises(ValueError, match="family"):
        contract.uint8_input("audio")


def test_dockerfile_and_deployment_give_tf_serving_the_serving_environment():
    import yaml
    from dockerfile_parse import DockerfileParser

    parser = DockerfileParser(fileobj=io.BytesIO((REPO / "Dockerfile.serving").read_bytes()))
    serving_stage_env = {}
    stage = None
    for item in parser.structure:
        if item["instruction"] == "FROM":
            stage = item["value"].split(" AS ")[-1]
        elif item["instruction"] == "ENV" and stage == "serving":
            serving_stage_env.update(pair.split("=", 1) for pair in item["value"].split())
    assert contract.SERVING_ENVIRONMENT.items() <= serving_stage_env.items()  # (also TF_XLA_FLAGS: the XLA cache)

    (deployment,) = [doc for doc in yaml.safe_load_all((REPO / "serving_config/k8s/deployment.yaml").read_text())]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert contract.SERVING_ENVIRONMENT.items() <= {item["name"]: item["value"] for item in container["env"]}.items()
