"""The contract between the parts: model -> export -> server <- client <- bench.

One definition of every value that more than one part relies on: the model
families, the signature and tensor names of an export, normalisation, the
test-time sampling and preprocessing of the original pipelines, the files an
export carries, and the batch plan. Pure Python (no numpy, no TensorFlow), so
every part, the TensorFlow-free client included, imports it for free.

Values that also live in files (serving_config/batching_parameters.txt, the
Kubernetes ConfigMap, Dockerfile.serving) are checked against this module in
tests/test_contract.py.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

# -- model families -------------------------------------------------------------------------------------

VIDEO = "video"  # Video Swin: clips [B, T, H, W, 3]
IMAGE = "image"  # Swin / Swin-S3: images [B, H, W, 3]
FAMILIES = (VIDEO, IMAGE)

# -- normalisation --------------------------------------------------------------------------------------

# RGB on the 0..255 scale. ImageNet's statistics, used by the Kinetics, SSv2 and ImageNet pipelines alike.
MEAN = (123.675, 116.28, 103.53)
STD = (58.395, 57.12, 57.375)

# -- signatures of an export ----------------------------------------------------------------------------

SERVING_DEFAULT = "serving_default"  # uint8 in, features out; XLA unless exported with the graph default
FEATURES_GRAPH = "features_graph"  # the same computation without XLA (when XLA is the default)
FEATURES_XLA = "features_xla"  # the XLA variant (when the graph is the default)
FEATURES_FLOAT = "features_float"  # already-normalised float input
FEATURE_MAP = "feature_map"  # the backbone's output after the final norm
CLASSIFY = "classify"  # logits, probabilities and top-k (exports with a head)
ATTENTION = "attention"  # post-softmax attention of selected blocks (opt-in: vswin export --with-attention);
#                          also the key of the list model(x, return_attention=True) adds
METADATA = "metadata"  # the export's vswin.json, one string per row: how a client learns the preprocessing

# Which forward pass serves as serving_default (`vswin export --default-signature`).
XLA, GRAPH, AUTO = "xla", "graph", "auto"
DEFAULT_SIGNATURE_CHOICES = (XLA, GRAPH, AUTO)

# -- process settings of the serving path ----------------------------------------------------------------

# The environment of the fastest CPU path, measured (benchmarks/README.md, "Model forward pass"): TensorFlow's
# oneDNN kernels on (TensorFlow leaves them off on CPUs without AVX-512 VNNI/BF16 or AMX, e.g. AVX2-only ones)
# and its BFC allocator for CPU memory (fewer fresh page mappings per call). `vswin serve`, `vswin export`
# (whose `auto` measurement must see what the server will run) and `vswin bench` set these before TensorFlow
# loads unless already set; Dockerfile.serving and the Kubernetes Deployment give tensorflow_model_server
# the same (TF Serving builds with oneDNN v2, so it reads both).
SERVING_ENVIRONMENT = {"TF_ENABLE_ONEDNN_OPTS": "1", "TF_CPU_ALLOCATOR_USE_BFC": "true"}

# -- tensor names ---------------------------------------------------------------------------------------

FRAMES = "frames"  # video, uint8 RGB [B, T, H, W, 3]
CLIPS = "clips"  # video, normalised float32 [B, T, H, W, 3]
IMAGES = "images"  # image, uint8 RGB [B, H, W, 3] (serving_default) or normalised float32 (features_float)

FEATURES = "features"  # float32 [B, C]
FEATURE_MAP_OUTPUT = "feature_map"  # float32 [B, T', H', W', C] (video) or [B, H', W', C] (image)
LOGITS = "logits"
PROBABILITIES = "probabilities"
TOP_K_SCORES = "top_k_scores"
TOP_K_CLASSES = "top_k_classes"
TOP_K_LABELS = "top_k_labels"
DEFAULT_TOP_K = 5

METADATA_INPUT = "row"  # int32 [B]: any values; the batch dimension lets TF Serving's batcher take the call
METADATA_OUTPUT = "metadata"  # string [B]: the export's vswin.json


def uint8_input(family: str) -> str:
    """The input name of the uint8 signatures (serving_default, feature_map, classify, attention)."""
    return FRAMES if _family(family) == VIDEO else IMAGES


def float_input(family: str) -> str:
    """The input name of features_float."""
    return CLIPS if _family(family) == VIDEO else IMAGES


def input_rank(family: str) -> int:
    """Rank of a batch of model inputs: 5 for clips, 4 for images."""
    return 5 if _family(family) == VIDEO else 4


def attention_output(stage: int, block: int) -> str:
    """Output name of one block's attention weights in the `attention` signature."""
    return f"attention_stage{stage}_block{block}"


def _family(family: str) -> str:
    if family not in FAMILIES:
        raise ValueError(f"model family must be one of {FAMILIES}, not {family!r}")
    return family


# -- the files of an export -----------------------------------------------------------------------------

SERVE_TAG = "serve"
ASSETS_EXTRA = "assets.extra"
METADATA_FILE = "vswin.json"  # ASSETS_EXTRA/METADATA_FILE
WARMUP_FILE = "tf_serving_warmup_requests"  # ASSETS_EXTRA/WARMUP_FILE
MAX_WARMUP_RECORDS = 1000  # TF Serving replays at most this many (kMaxNumRecordsToLoad)
WARMUP_BATCH_SIZES_KEY = "warmup_batch_sizes"  # METADATA_FILE field: the batch sizes the warmup file replays

# -- the batch plan -------------------------------------------------------------------------------------

# serving_config/batching_parameters.txt pads merged batches to these sizes, `vswin export` warms them all up
# by default (one XLA program each), and clients send at most MAX_BATCH_SIZE rows per request.
ALLOWED_BATCH_SIZES = (1, 2, 4, 8)
MAX_BATCH_SIZE = ALLOWED_BATCH_SIZES[-1]

# A request with more rows than the batcher's max_batch_size: INVALID_ARGUMENT with TF Serving's wording
# (shared_batch_scheduler.h, ValidateBatchTaskQueueCapacity), which `vswin serve` uses too, so a client learns
# the server's limit from either.
BATCH_TOO_LARGE = "Task size {size} is larger than maximum input batch size {limit}"
_BATCH_TOO_LARGE = re.compile(r"Task size (\d+) is larger than maximum input batch size (\d+)")


def batch_too_large(size: int, limit: int) -> str:
    """The message of a request of `size` rows refused by a batcher of max_batch_size `limit`."""
    return BATCH_TOO_LARGE.format(size=size, limit=limit)


def parse_batch_too_large(message: str) -> tuple[int, int] | None:
    """(size, limit) from a BATCH_TOO_LARGE message (anywhere in `message`), None for any other message."""
    found = _BATCH_TOO_LARGE.search(message)
    return (int(found[1]), int(found[2])) if found else None

# -- test-time preprocessing ----------------------------------------------------------------------------

# Video (mmaction2 test pipeline of Video Swin, Kinetics): SampleFrames(clip_len=32, frame_interval=2,
# num_clips=4, test_mode=True), Resize(-1, 224), ThreeCrop(224), Normalize(MEAN, STD).
CLIP_LEN = 32
FRAME_INTERVAL = 2
NUM_CLIPS = 4
NUM_CROPS = 3
CROP_SIZE = 224
SAMPLING_MODES = ("uniform", "dense", "sliding", "segments")

# Image (the official Swin evaluation, data/build.py): at 224, resize the short side to int(256 / 224 * size)
# (bicubic) and center-crop `size`; above 224 (TEST.CROP False in the 384 configs), resize to size x size.
IMAGE_CROP_RATIO = 0.875
# Frames of a video sent to an image model ("frame features", `vswin extract --frames-per-video`), one from the
# middle of each of as many equal segments of the video.
FRAMES_PER_VIDEO = 8
INTERPOLATIONS = ("bilinear", "bicubic")
RESIZE_MODES = ("short_side", "squash")


@dataclasses.dataclass(frozen=True)
class Preprocessing:
    """How raw frames or images become model input, as the original test pipeline makes them.

    Carried by every preset and recorded in every export's vswin.json (and its
    `metadata` signature), so a client samples and crops the way the model was
    evaluated without configuration of its own.

    Video: `sampling` over the video (`uniform`: SampleFrames' test clips;
    `segments`: clip_len frames spread over the whole video, the SSv2 setting),
    `num_clips` clips of `clip_len` frames every `frame_interval`-th frame, the
    short side resized to `size` (bilinear), `num_crops` crops of `size`.
    Image: `resize_mode` short_side resizes the short side to `size / crop_ratio`
    with `interpolation` and takes one center crop of `size`; squash resizes
    to size x size without cropping (the official 384 evaluation).
    """

    family: str = VIDEO
    size: int = CROP_SIZE
    mean: tuple[float, float, float] = MEAN
    std: tuple[float, float, float] = STD
    sampling: str = "uniform"
    clip_len: int = CLIP_LEN
    frame_interval: int = FRAME_INTERVAL
    num_clips: int = NUM_CLIPS
    num_crops: int = NUM_CROPS
    crop_ratio: float = 1.0
    interpolation: str = "bilinear"
    resize_mode: str = "short_side"

    def __post_init__(self) -> None:
        _family(self.family)
        if self.sampling not in SAMPLING_MODES:
            raise ValueError(f"sampling must be one of {SAMPLING_MODES}, not {self.sampling!r}")
        if self.interpolation not in INTERPOLATIONS:
            raise ValueError(f"interpolation must be one of {INTERPOLATIONS}, not {self.interpolation!r}")
        if self.resize_mode not in RESIZE_MODES:
            raise ValueError(f"resize_mode must be one of {RESIZE_MODES}, not {self.resize_mode!r}")
        for name in ("size", "clip_len", "frame_interval", "num_clips"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.num_crops not in (1, 3):
            raise ValueError(f"num_crops must be 1 (center) or 3 (three crops), got {self.num_crops}")
        if not 0 < self.crop_ratio <= 1:
            raise ValueError(f"crop_ratio must be in (0, 1], got {self.crop_ratio}")
        if len(self.mean) != 3 or len(self.std) != 3 or min(self.std) <= 0:
            raise ValueError(f"mean and std need 3 values each (std positive), got {self.mean}, {self.std}")

    @property
    def resize_to(self) -> int:
        """The short side before cropping: size / crop_ratio, as timm and the Swin evaluation round it."""
        return int(self.size / self.crop_ratio) if self.crop_ratio < 1 else self.size

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["mean"], data["std"] = list(self.mean), list(self.std)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Preprocessing:
        """From `to_dict` output (unknown keys ignored, so newer exports still read)."""
        names = {field.name for field in dataclasses.fields(cls)}
        known = {key: value for key, value in data.items() if key in names}
        for key in ("mean", "std"):
            if key in known:
                known[key] = tuple(float(v) for v in known[key])
        return cls(**known)


def video_preprocessing(**overrides: Any) -> Preprocessing:
    """The Kinetics test pipeline (4 clips x 3 crops of 32 frames at 224), with `overrides`."""
    return Preprocessing(family=VIDEO, **overrides)


def image_preprocessing(size: int = CROP_SIZE) -> Preprocessing:
    """The Swin ImageNet evaluation at `size`: bicubic; crop ratio 0.875 up to 224, a plain resize above."""
    crop = size <= CROP_SIZE
    return Preprocessing(family=IMAGE, size=size, clip_len=1, frame_interval=1, num_clips=1, num_crops=1,
                         crop_ratio=IMAGE_CROP_RATIO if crop else 1.0, interpolation="bicubic",
                         resize_mode="short_side" if crop else "squash")
