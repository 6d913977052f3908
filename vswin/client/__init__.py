"""Thin gRPC client for video and image Swin models on TF Serving: decode, sampling, preprocessing, requests.

Depends on grpcio, protobuf, numpy, OpenCV and Pillow only, and never imports TensorFlow.

    from vswin.client import VideoSwinClient
    client = VideoSwinClient("localhost:8500", model="vswin_tiny")
    result = client.extract("video.mp4")   # the model's own sampling and crops; result.features: [C]

Names load on first use (PEP 562), so `vswin.client.cli` and `vswin --help`
don't pay for grpc and OpenCV.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from vswin.lazy import lazy_exports

_EXPORTS = {
    "AsyncVideoSwinClient": "vswin.client.aio",
    "ChannelSettings": "vswin.client.channel",
    "ClientCore": "vswin.client.core",
    "RetryPolicy": "vswin.client.channel",
    "VideoSwinClient": "vswin.client.client",
    "ClientError": "vswin.client.errors",
    "DeadlineExceeded": "vswin.client.errors",
    "FileError": "vswin.client.errors",
    "ImageError": "vswin.client.errors",
    "InvalidInput": "vswin.client.errors",
    "ModelNotFound": "vswin.client.errors",
    "ServerError": "vswin.client.errors",
    "ServerUnavailable": "vswin.client.errors",
    "VideoError": "vswin.client.errors",
    "VideoSwinClientError": "vswin.client.errors",
    "ExtractOptions": "vswin.client.extract",
    "ExtractResult": "vswin.client.extract",
    "ImageResult": "vswin.client.extract",
    "ModelInfo": "vswin.client.metadata",
    "SignatureInfo": "vswin.client.metadata",
    "TensorSpec": "vswin.client.metadata",
    "Classification": "vswin.client.requests",
    "VersionStatus": "vswin.client.requests",
    "Sampling": "vswin.client.sampling",
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

if TYPE_CHECKING:
    from vswin.client.aio import AsyncVideoSwinClient
    from vswin.client.channel import ChannelSettings, RetryPolicy
    from vswin.client.core import ClientCore
    from vswin.client.client import VideoSwinClient
    from vswin.client.errors import (
        ClientError,
        DeadlineExceeded,
        FileError,
        ImageError,
        InvalidInput,
        ModelNotFound,
        ServerError,
        ServerUnavailable,
        VideoError,
        VideoSwinClientError,
    )
    from vswin.client.extract import ExtractOptions, ExtractResult, ImageResult
    from vswin.client.metadata import ModelInfo, SignatureInfo, TensorSpec
    from vswin.client.requests import Classification, VersionStatus
    from vswin.client.sampling import Sampling
