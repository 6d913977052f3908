"""The process-wide XLA switch of an embedded server is put back when it stops."""

from __future__ import annotations

from vswin.serving.model_config import single_model_config
from vswin.serving.server import ModelServer, ServerOptions
from vswin.serving.xla import set_xla_compilation, xla_compilation_enabled


def test_stopping_an_embedded_server_restores_xla(micro_export):
    set_xla_compilation(True)
    server = ModelServer(ServerOptions(model_config=single_model_config("micro", micro_export), host="127.0.0.1",
                                       port=0, enable_model_warmup=False))
    server.start()
    try:
        assert not xla_compilation_enabled()  # as tensorflow_model_server without --xla_*_compilation_enabled
    finally:
        server.stop(grace=1)
    assert xla_compilation_enabled()
