"""What a client learns from GetModelMetadata: signatures, their tensor specs, and the clip geometry."""

from __future__ import annotations

from dataclasses import dataclass

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
    """A served model version as the client sees it; `signature` is the one this client calls."""

    name: str
    version: int
    signature: str
    signatures: dict[str, SignatureInfo]

    @property
    def input(self) -> TensorSpec:
        """The called signature's clip input (`frames` uint8, or `clips` float32)."""
        inputs = self.signatures[self.signature].inputs
        return (inputs.get(contract.FRAMES) or inputs.get(contract.CLIPS) or inputs.get(contract.IMAGES)
                or next(iter(inputs.values())))

    @property
    def clip_shape(self) -> tuple[int, int, int]:
        """(T, H, W) fixed at export, read from the input shape [batch, T, H, W, 3]."""
        shape = self.input.shape
        if shape is None or len(shape) != 5 or None in shape[1:4]:
            raise InvalidInput(f"signature {self.signature!r} input {self.input.describe()} has no static clip shape")
        return int(shape[1]), int(shape[2]), int(shape[3])

    @property
    def clip_len(self) -> int:
        return self.clip_shape[0]

    @property
    def height(self) -> int:
        return self.clip_shape[1]

    @property
    def width(self) -> int:
        return self.clip_shape[2]

    @property
    def feature_dim(self) -> int | None:
        """C of the `features` output, from the called signature or else from `serving_default`."""
        for name in (self.signature, contract.SERVING_DEFAULT):
            spec = self.signatures.get(name, None)
            out = spec.outputs.get(contract.FEATURES) if spec else None
            if out is not None and out.shape and out.shape[-1] is not None:
                return int(out.shape[-1])
        return None


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
