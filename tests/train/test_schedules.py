import pytest

from lossnet.train.schedules import OneCycle


@pytest.mark.parametrize("total", [1, 2, 3, 4, 100, 1000])
def test_one_cycle_rises_then_falls(total):
    s = OneCycle(total)
    values = [s(i) for i in range(total)]  # the multipliers of the steps a run takes
    peak = values.index(max(values))
    assert max(values) == pytest.approx(1.0)
    if total >= 4:
        assert values[0] == pytest.approx(1 / 25)
    if total >= 2:
        assert values[-1] == pytest.approx(1e-5)
    assert all(a <= b for a, b in zip(values[: peak + 1], values[1 : peak + 1]))
    assert all(a >= b for a, b in zip(values[peak:], values[peak + 1 :]))
