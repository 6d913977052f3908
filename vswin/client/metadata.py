"""What a client learns about a model version: signatures and tensor specs (GetModelMetadata), and the
export's serving metadata (its `metadata` signature): family, geometry, preprocessing."""

from __future__ import annotations

from collections.abc import Mapping
import dataclasses
import json
from dataclasses import dataclass
from typing import Any

from vswin import contract
from vswin.client import protos
from vswin.client.errors import InvalidInput, ServerError
from vswin.client.tensors import dtype_name


@dataclass(frozen=True)
class TensorSpec:
    """One signature input or output: dtype name ('DT_UINT8', ...) and shape (None for an unknown dim)."""

    name: str
    dtype: str
    shape: tuple[int | None, ...] | None

    def describe(self) -> str:
        shape = "unknown rank" if self.shape is None else "[" + ",".join("?" if d is None else str(d) for d in self.shape) + "]"
        return f"{self.name}: {self.dtype} {shape}"


@dataclass(frozen=True)
class SignatureInfo:
    name: str
    method_name: str
    inputs: dict[str, TensorSpec]
    outputs: dict[str, TensorSpec]


@dataclass(frozen=True)
class ModelInfo:
    """A served model version as the client sees it; `signature` is the one this client calls.

    `export` is the export's serving metadata (family, preprocessing, clip,
    features_dim, ...) read from its `metadata` signature, None for exports
    without one; `preprocessing` is the export's, or else the contract's
    defaults for the input geometry.
    """

    name: str
    version: int
    signature: str
    signatures: dict[str, SignatureInfo]
    export: Mapping[str, Any] | None = None
    preprocessing: contract.Preprocessing | None = None  # None: filled in from the family and geometry

    def __post_init__(self) -> None:
        if self.preprocessing is None:
            object.__setattr__(self, "preprocessing", self._default_preprocessing())

    @property
    def input(self) -> TensorSpec:
        """The called signature's input: `frames`/`clips` (video) or `images`, else its only input."""
        signature = self.signatures.get(self.signature)
        if signature is None or not signature.inputs:
            raise InvalidInput(f"model {self.name!r} version {self.version}: no inputs known for signature "
                               f"{self.signature!r}")  # fmt: skip
        inputs = signature.inputs
        return (inputs.get(contract.FRAMES) or inputs.get(contract.CLIPS) or inputs.get(contract.IMAGES)
                or next(iter(inputs.values())))

    @property
    def family(self) -> str:
        """`video` or `image`: the export's word for it, else the input's rank (4 for images), else video."""
        family = (self.export or {}).get("family")
        if family in contract.FAMILIES:
            return family
        try:
            shape = self.input.shape
        except InvalidInput:
            return contract.VIDEO
        return contract.IMAGE if shape is not None and len(shape) == contract.input_rank(contract.IMAGE) else contract.VIDEO

    @property
    def view_shape(self) -> tuple[int, ...]:
        """One batch row: (T, H, W, 3) for video, (H, W, 3) for images, fixed at export."""
        shape = self.input.shape
        rank = contract.input_rank(self.family)
        if shape is None or len(shape) != rank or None in shape[1:]:
            raise InvalidInput(f"signature {self.signature!r} input {self.input.describe()} has no static "
                               f"{'clip' if self.family == contract.VIDEO else 'image'} shape")
        return tuple(int(d) for d in shape[1:])

    @property
    def clip_shape(self) -> tuple[int, int, int]:
        """(T, H, W) of a video model's clips (read from the input shape [batch, T, H, W, 3])."""
        if self.family != contract.VIDEO:
            raise InvalidInput(f"model {self.name!r} version {self.version} is an image model: it has no clip shape")
        return self.view_shape[:3]

    @property
    def clip_len(self) -> int:
        """Frames per clip: T for video models, 1 for image models."""
        return self.clip_shape[0] if self.family == contract.VIDEO else 1

    @property
    def height(self) -> int:
        return self.view_shape[-3]

    @property
    def width(self) -> int:
        return self.view_shape[-2]

    @property
    def feature_dim(self) -> int | None:
        """C of the `features` output, from the called signature or else from `serving_default`."""
        for name in (self.signature, contract.SERVING_DEFAULT):
            spec = self.signatures.get(name, None)
            out = spec.outputs.get(contract.FEATURES) if spec else None
            if out is not None and out.shape and out.shape[-1] is not None:
                return int(out.shape[-1])
        dim = (self.export or {}).get("features_dim")
        return int(dim) if isinstance(dim, int) else None

    def _default_preprocessing(self) -> contract.Preprocessing:
        """The contract's pipeline for this family at the input geometry (exports without `metadata`)."""
        try:
            shape = self.view_shape
        except InvalidInput:
            shape = None
        if self.family == contract.IMAGE:
            return contract.image_preprocessing(shape[0]) if shape else contract.image_preprocessing()
        if shape is None:
            return contract.video_preprocessing()
        return contract.video_preprocessing(clip_len=shape[0], size=max(shape[1], shape[2]))


def _spec(name: str, info: protos.TensorInfo) -> TensorSpec:
    shape = None
    if not info.tensor_shape.unknown_rank:
        shape = tuple(None if d.size < 0 else int(d.size) for d in info.tensor_shape.dim)
    return TensorSpec(name=name, dtype=dtype_name(info.dtype), shape=shape)


def parse_metadata(response: protos.GetModelMetadataResponse, signature: str) -> ModelInfo:
    """Build ModelInfo from a GetModelMetadataResponse; the signature asked for must exist."""
    packed = response.metadata.get("signature_def")
    if packed is None or packed.type_url != protos.SIGNATURE_DEF_MAP_URL:
        raise ServerError(f"model metadata has no signature_def map (got {packed.type_url if packed else 'nothing'})")
    defs = protos.SignatureDefMap.FromString(packed.value).signature_def
    signatures = {
        name: SignatureInfo(
            name=name,
            method_name=sig.method_name,
            inputs={k: _spec(k, v) for k, v in sorted(sig.inputs.items())},
            outputs={k: _spec(k, v) for k, v in sorted(sig.outputs.items())},
        )
        for name, sig in sorted(defs.items())
    }
    spec = response.model_spec
    if signature not in signatures:
        raise InvalidInput(
            f"model {spec.name!r} version {spec.version.value} has no signature {signature!r}; "
            f"it has {sorted(signatures)}"
        )
    return ModelInfo(name=spec.name, version=int(spec.version.value), signature=signature, signatures=signatures)


def with_export(info: ModelInfo, text: bytes | str) -> ModelInfo:
    """`info` with the export's serving metadata (the JSON its `metadata` signature answers) and its preprocessing."""
    try:
        export = json.loads(text)
        if not isinstance(export, dict):
            raise ValueError(f"expected a JSON object, got {type(export).__name__}")
        preprocessing = export.get("preprocessing")
        preprocessing = None if preprocessing is None else contract.Preprocessing.from_dict(preprocessing)
    except (ValueError, TypeError) as err:
        raise ServerError(f"model {info.name!r} version {info.version}: its {contract.METADATA!r} signature "
                          f"answered metadata this client cannot read: {err}") from None
    return dataclasses.replace(info, export=export, preprocessing=preprocessing)
