"""ModelService: GetModelStatus and HandleReloadConfigRequest as TF Serving answers them."""

from __future__ import annotations

import logging
from collections.abc import Callable

import grpc
from tensorflow_serving.apis import get_model_status_pb2, model_management_pb2, model_pb2, model_service_pb2_grpc
from tensorflow_serving.apis import status_pb2

from vswin.serving.errors import ServingError
from vswin.serving.manager import ModelManager
from vswin.serving.model_config import ModelServerConfig

log = logging.getLogger(__name__)

_STATE = get_model_status_pb2.ModelVersionStatus.State


def model_status(manager: ModelManager, spec: model_pb2.ModelSpec) -> get_model_status_pb2.GetModelStatusResponse:
    """GetModelStatus's answer for `spec` (gRPC and REST): every version, or the one version or label named.

    Each entry carries a status, OK or the load error, as TF Serving's does.
    """
    version = spec.version.value if spec.WhichOneof("version_choice") == "version" else None
    states = manager.status(spec.name, version, spec.version_label)
    response = get_model_status_pb2.GetModelStatusResponse()
    for state in states:
        entry = response.model_version_status.add()
        entry.version = state.version
        entry.state = _STATE.Value(state.state)
        entry.status.SetInParent()
        if state.error is not None:
            entry.status.error_code = state.error.code.value[0]
            entry.status.error_message = state.error.message
    return response


class ModelService(model_service_pb2_grpc.ModelServiceServicer):
    """Version states from the manager; config reloads through `reload` (the server's, to keep health in step)."""

    def __init__(self, manager: ModelManager, reload: Callable[[ModelServerConfig], None]) -> None:
        self.manager = manager
        self.reload = reload

    def GetModelStatus(
        self, request: get_model_status_pb2.GetModelStatusRequest, context: grpc.ServicerContext
    ) -> get_model_status_pb2.GetModelStatusResponse:
        try:
            return model_status(self.manager, request.model_spec)
        except ServingError as err:
            context.abort(err.code, err.message)

    def HandleReloadConfigRequest(
        self, request: model_management_pb2.ReloadConfigRequest, context: grpc.ServicerContext
    ) -> model_management_pb2.ReloadConfigResponse:
        response = model_management_pb2.ReloadConfigResponse()
        try:
            if request.config.WhichOneof("config") != "model_config_list":
                raise ServingError(grpc.StatusCode.INVALID_ARGUMENT,
                                   "ServerModelConfig type not supported by HandleReloadConfigRequest. "
                                   "Only ModelConfigList is currently supported")  # fmt: skip
            self.reload(request.config)
        except ServingError as err:
            log.error("ReloadConfig failed; still serving the previous config: %s", err.message)
            context.abort(err.code, err.message)
        response.status.CopyFrom(status_pb2.StatusProto(error_code=0))
        return response
