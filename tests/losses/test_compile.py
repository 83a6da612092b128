"""``torch.compile(PerceptualLoss)``: one graph, no break, the eager numbers.

The loss (feature + style + pixel + TV on a random VGG16 cut at relu2_2, 32 px) must trace as one
graph: ``fullgraph=True`` raises at the first break, so it is the check that counts.
``torch._dynamo.explain`` is asked too, but alone it is not enough: on torch 2.13 it reported 0
breaks for the old value check (``float(torch.aminmax(x))`` inside a generator), because dynamo
skipped those frames instead of splitting them. The input value checks (NaN/inf, range) are skipped
while compiling (:func:`lossnet.validation.check_image`); shape and dtype checks still run.

The ``aot_eager`` backend traces the forward and the backward graphs (dynamo + AOT autograd)
without generating code; the default backend (inductor) compiles C++ on a CPU. Both are marked slow
(4-15 s and 40 s cold on a loaded 2-core CPU); the ``eager`` backend (dynamo alone, forward only,
about 1.5 s) is the quick guard.
"""

from __future__ import annotations

import pytest
import torch

from lossnet import PerceptualLoss
from lossnet.errors import InputError

TERMS = {"feature_layers": ["relu2_2"], "style_layers": ["relu1_2", "relu2_2"], "pixel_weight": 1.0, "tv_weight": 0.1}


@pytest.fixture(scope="module")
def inductor_cache(tmp_path_factory):  # type: ignore[no-untyped-def]
    """A compile cache of this module's own: the shared one in /tmp may hold kernels that another process built
    for other CPU settings (reused by a process limited to AVX2, one gave an index out of bounds)."""
    return tmp_path_factory.mktemp("inductor")


@pytest.fixture
def dynamo(inductor_cache, monkeypatch):  # type: ignore[no-untyped-def]
    """A fresh dynamo cache around each test, so no compiled code of another test is reused."""
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(inductor_cache))
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


def _inputs() -> tuple[torch.Tensor, torch.Tensor]:
    return torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)


def _value_and_grad(
    loss: torch.nn.Module, pred: torch.Tensor, target: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    pred = pred.clone().requires_grad_(True)
    value = loss(pred, target)
    value.backward()
    return value.detach(), pred.grad  # type: ignore[return-value]


def _check_compiled(loss: PerceptualLoss, backend: str, rtol: float, atol: float) -> None:
    pred, target = _inputs()
    compiled = torch.compile(loss, fullgraph=True, backend=backend)
    value, grad = _value_and_grad(compiled, pred, target)
    eager_value, eager_grad = _value_and_grad(loss, pred, target)
    torch.testing.assert_close(value, eager_value, rtol=rtol, atol=atol)
    torch.testing.assert_close(grad, eager_grad, rtol=rtol, atol=atol)


@pytest.mark.slow
def test_compiled_loss_is_one_graph_with_the_eager_value(dynamo) -> None:  # type: ignore[no-untyped-def]
    loss = PerceptualLoss("vgg16", weights=None, **TERMS)
    explained = torch._dynamo.explain(loss)(*_inputs())
    assert (explained.graph_count, explained.graph_break_count) == (1, 0), explained.break_reasons
    torch._dynamo.reset()
    _check_compiled(loss, "aot_eager", rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("compute_dtype", [None, "auto", "bf16"], ids=["fp32", "auto", "bf16"])
def test_the_forward_is_one_graph_in_every_precision(  # type: ignore[no-untyped-def]
    dynamo, compute_dtype: str | None
) -> None:
    """The quick guard (forward only, no AOT autograd). A name's decision (the CPU probe, its cache)
    runs in Python once, at tracing time, not in the graph."""
    loss = PerceptualLoss("vgg16", weights=None, compute_dtype=compute_dtype, **TERMS)
    pred, target = _inputs()
    compiled = torch.compile(loss, fullgraph=True, backend="eager")
    torch.testing.assert_close(compiled(pred, target), loss(pred, target), rtol=1e-6, atol=1e-7)


def test_compiled_loss_skips_value_checks_and_keeps_shape_checks(dynamo) -> None:  # type: ignore[no-untyped-def]
    loss = PerceptualLoss("vgg16", weights=None, **TERMS)
    pred, target = _inputs()
    pred[0, 0, 0, 0] = float("nan")
    with pytest.raises(InputError, match="prediction contains NaN"):
        loss(pred, target)  # eager: checked
    compiled = torch.compile(loss, backend="eager")
    assert torch.isnan(compiled(pred, target))  # compiled: not checked (documented in check_image)
    with pytest.raises(InputError, match=r"channels-last"):  # shapes are still checked, while tracing
        compiled(torch.rand(2, 32, 32, 3), target)


@pytest.mark.slow
def test_compiled_loss_with_inductor(dynamo) -> None:  # type: ignore[no-untyped-def]
    """The default backend: generated kernels, so only close to eager (float32 sums in another order)."""
    _check_compiled(PerceptualLoss("vgg16", weights=None, **TERMS), "inductor", rtol=1e-5, atol=1e-6)
