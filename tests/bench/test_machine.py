"""The machine and process record every figure carries: instruction sets, settings, load."""

from __future__ import annotations

import subprocess
import sys

import pytest

from vswin.bench import machine


def test_instruction_sets_are_the_vector_extensions_among_the_cpu_flags():
    flags = "fpu sse4_1 sse4_2 avx avx2 fma avx512f avx512_bf16 amx_tile bmi2 avx_vnni f16c"
    assert machine.instruction_sets(flags) == ["amx_tile", "avx", "avx2", "avx512_bf16", "avx512f", "avx_vnni",
                                               "f16c", "fma", "sse4_1", "sse4_2"]  # fmt: skip


def test_environment_keeps_the_variables_that_select_kernels_allocators_and_threads():
    env = {"TF_ENABLE_ONEDNN_OPTS": "1", "MALLOC_ARENA_MAX": "2", "XLA_FLAGS": "--x", "HOME": "/root",
           "XLA_PYTHON_CLIENT_PREALLOCATE": "false", "PATH": "/bin"}  # fmt: skip
    assert machine.environment(env) == {"MALLOC_ARENA_MAX": "2", "TF_ENABLE_ONEDNN_OPTS": "1", "XLA_FLAGS": "--x",
                                        "XLA_PYTHON_CLIENT_PREALLOCATE": "false"}  # fmt: skip


@pytest.mark.slow
def test_settings_report_only_frameworks_the_process_imported(subprocess_env):
    code = ("import json, numpy; from vswin.bench import machine; import sys\n"
            "print(json.dumps(sorted(machine.settings())), 'tensorflow' in sys.modules)")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=subprocess_env)
    assert out.stdout.split() == ['["environment"]', "False"]


def test_the_machine_names_its_cpu_and_load():
    described = machine.describe()
    assert described["cores"] >= 1 and isinstance(described["cpu_instruction_sets"], list)
    load = machine.load_average()
    assert load is None or len(load) == 3
