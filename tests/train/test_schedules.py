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
    # LambdaLR evaluates the schedule once more after the last optimizer step (step `total`): a 1-step run
    # divided by zero there (`lossnet train restore --steps 1`, session 19).
    assert s(total) == pytest.approx(1e-5)


def test_a_schedule_step_before_any_optimizer_step_is_silent():
    """fp16's GradScaler skips the first optimizer steps; stepping the schedule then must print nothing, while
    torch's own scheduler.step() warns (so this test would see the warning if step_schedule let it through)."""
    import warnings

    import torch

    from lossnet.train.schedules import step_schedule

    def scheduler():
        opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
        return torch.optim.lr_scheduler.LambdaLR(opt, OneCycle(10))

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        quiet = scheduler()
        step_schedule(quiet)
        assert caught == []
        scheduler().step()
    assert len(caught) == 1 and "lr_scheduler.step()" in str(caught[0].message)
    assert quiet.last_epoch == 1


def test_a_one_step_run_of_a_one_cycle_recipe_trains(tiny):
    from lossnet.train import train

    config = tiny("restore", steps=1)
    assert config.schedule == "onecycle"
    result = train(config)
    assert result.step == 1 and (result.out_dir / "model.safetensors").is_file()
