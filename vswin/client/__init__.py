"""Thin gRPC client for Video Swin models on TF Serving: video decode, clip sampling, requests.

Depends on grpcio, protobuf, numpy and OpenCV only, and never imports TensorFlow.

    from vswin.client import VideoSwinClient
    client = VideoSwinClient("localhost:8500", model="vswin_tiny")
    result = client.extract("video.mp4", clips=4, crops=3)   # result.features: [C]
"""

from vswin.client.aio import AsyncVideoSwinClient
from vswin.client.channel import ChannelSettings, RetryPolicy
from vswin.client.client import VideoSwinClient
from vswin.client.errors import (
    ClientError,
    DeadlineExceeded,
    InvalidInput,
    ModelNotFound,
    ServerError,
    ServerUnavailable,
    VideoError,
    VideoSwinClientError,
)
from vswin.client.extract import ExtractOptions, ExtractResult
from vswin.client.metadata import ModelInfo, SignatureInfo, TensorSpec
from vswin.client.requests import Classification, VersionStatus
from vswin.client.sampling import Sampling

__all__ = [
    "AsyncVideoSwinClient",
    "ChannelSettings",
    "Classification",
    "ClientError",
    "DeadlineExceeded",
    "ExtractOptions",
    "ExtractResult",
    "InvalidInput",
    "ModelInfo",
    "ModelNotFound",
    "RetryPolicy",
    "Sampling",
    "ServerError",
    "ServerUnavailable",
    "SignatureInfo",
    "TensorSpec",
    "VersionStatus",
    "VideoError",
    "VideoSwinClient",
    "VideoSwinClientError",
]
