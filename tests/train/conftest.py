import pytest

from lossnet.train.config import task_config

#: Tiny networks, so a step takes milliseconds.
TINY_MODELS = {
    "superres": {"channels": 8, "num_residual": 1, "head_kernel_size": 3},
    "style": {"channels": 4, "num_residual": 1},
    "style_multi": {"channels": 4, "num_residual": 1},
    "colorize": {"depth": 2, "base_channels": 4},
    "restore": {"depth": 2, "base_channels": 4},
    "style_any": {"arch": "vgg11", "weights": None},  # a random trunk (kept in the checkpoint)
}


@pytest.fixture
def tiny(tmp_path):
    """A config factory: the task's recipe shrunk to 32 px crops, batch 2 and a random loss network, on the CPU
    (these tests' facts, such as a bit-identical resume, are the CPU's; where a GPU is present the default device,
    auto, would pick it: the CUDA training test passes ``device="cuda"``)."""

    def make(task, **overrides):
        values = dict(
            model_kwargs=TINY_MODELS[task],
            crop_size=32,
            val_size=32,
            image_size=96,
            style_size=64,
            batch_size=2,
            steps=4,
            device="cpu",
            loss_weights=None,
            out_dir=str(tmp_path / task),
            log_every=1,
            val_every=2,
            checkpoint_every=2,
        )
        return task_config(task, **{**values, **overrides})

    return make
