import torch

from lossnet.train.batches import StepStream


class Numbers(torch.utils.data.Dataset):
    def __init__(self, n):
        self.n, self.epoch = n, 0

    def __len__(self):
        return self.n

    def set_epoch(self, e):
        self.epoch = e

    def __getitem__(self, i):
        return (self.epoch, i)


def test_each_epoch_visits_every_item_once_in_a_new_order():
    s = StepStream(Numbers(7), seed=3)
    e0 = [s[p] for p in range(7)]
    e1 = [s[p] for p in range(7, 14)]
    assert sorted(i for _, i in e0) == sorted(i for _, i in e1) == list(range(7))
    assert {e for e, _ in e0} == {0} and {e for e, _ in e1} == {1}
    assert [i for _, i in e0] != [i for _, i in e1]


def test_ranks_get_disjoint_shards_that_cover_the_epoch():
    ranks = [StepStream(Numbers(8), seed=0, rank=r, world_size=2) for r in range(2)]
    shards = [[s[p][1] for p in range(4)] for s in ranks]
    assert set(shards[0]).isdisjoint(shards[1]) and sorted(shards[0] + shards[1]) == list(range(8))


def test_any_position_can_be_read_first():
    """A resumed run starts mid-stream and must read what an uninterrupted run reads."""
    a = StepStream(Numbers(5), seed=1)
    full = [a[p] for p in range(20)]
    b = StepStream(Numbers(5), seed=1)
    assert [b[p] for p in range(13, 20)] == full[13:]
