"""Shared test fixtures. No test may reach the network: outside connections raise."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
import torch

from lossnet.memory import keep_freed_memory


def pytest_configure(config: pytest.Config) -> None:
    """Each test process keeps freed memory for reuse, as ``lossnet`` does; under pytest-xdist (``make test`` runs
    ``-n auto``), each worker takes its share of the cores, so that the workers' torch threads together do not
    oversubscribe the CPU."""
    keep_freed_memory()  # as the CLI does for every command and the trainer for every run (lossnet.memory)
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers > 1:
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // workers))


#: The modules whose tests train networks, longest first (as an AVX2 CPU runs them on one thread each; the test
#: durations table in BENCHMARKS.md). pytest-xdist's ``loadscope`` hands out modules in order of their test count,
#: so these few-test, minutes-long modules would start last and leave one worker idle while the other finishes them.
LONGEST_FIRST = (
    "tests/train/test_learning.py",
    "tests/explore/test_sweep.py",
    "tests/train/test_learning_adain.py",
    "tests/train/test_learning_demo_style.py",
    "tests/train/test_learning_multi_style.py",
    "tests/explore/test_style_effects.py",
    "tests/test_walkthrough.py",
    "tests/losses/test_compile.py",
)


@pytest.hookimpl(optionalhook=True)  # a hook of pytest-xdist: pytest without it (-p no:xdist) must still run
def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object:
    """``--dist loadscope`` with the long modules of :data:`LONGEST_FIRST` handed out first (longest-first keeps the
    workers busy to the end); any other ``--dist`` keeps xdist's own scheduler."""
    if config.getoption("dist") != "loadscope":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class LongestFirst(LoadScopeScheduling):
        def _assign_work_unit(self, node: object) -> None:
            for scope in reversed(LONGEST_FIRST):
                if scope in self.workqueue:
                    self.workqueue.move_to_end(scope, last=False)
            super()._assign_work_unit(node)

    return LongestFirst(config, log)


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Refuse every connection that leaves this machine (loopback stays allowed)."""
    real_connect = socket.socket.connect

    def guarded(self: socket.socket, address: object) -> object:
        host = address[0] if isinstance(address, tuple) else address
        if (
            isinstance(host, str)
            and (host.startswith("127.") or host in ("localhost", "::1"))
            or self.family == socket.AF_UNIX
        ):
            return real_connect(self, address)
        raise RuntimeError(f"test tried to reach the network: {address!r}")

    monkeypatch.setattr(socket.socket, "connect", guarded)
    monkeypatch.setenv("LOSSNET_OFFLINE", "1")


@pytest.fixture(autouse=True)
def seeded() -> None:
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def hed_weights():
    """The offline pretrained VGG16 (HED), loaded once per session."""
    from lossnet.backbones.weights import load_weights

    return load_weights("vgg16", "hed")


@pytest.fixture
def stub_cpu(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """``stub_cpu(CpuProbe(...))`` puts a stub in place of the runtime's CPU probe, so a test does not
    depend on this machine's flags; cached decisions and logged notes are forgotten around the test."""
    from lossnet import runtime

    def use(probe: runtime.CpuProbe) -> None:
        monkeypatch.setattr(runtime, "probe_cpu", lambda: probe)
        runtime._decide_cached.cache_clear()

    monkeypatch.setattr(runtime, "_WARNED", set())
    yield use
    runtime._decide_cached.cache_clear()


@pytest.fixture
def empty_hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty torch.hub directory; returns its checkpoints folder (not created)."""
    hub = tmp_path / "hub"
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    monkeypatch.setattr(torch.hub, "_hub_dir", str(hub))  # what torch.hub.set_dir sets, restored afterwards
    assert Path(torch.hub.get_dir()) == hub
    return hub / "checkpoints"
