import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from topoprune.data.memory import InMemoryImages
from topoprune.data.splits import DatasetSplits
from topoprune.data.transforms import (
    BatchTransform,
    normalize,
    normalize_batch,
    random_crop,
    random_hflip,
    train_augment,
)
from topoprune.errors import TopopruneError

shapes = st.tuples(st.integers(1, 6), st.integers(1, 3), st.integers(1, 9), st.integers(1, 9))


def seeded(seed):
    return torch.Generator().manual_seed(seed)


def distinct_batch(shape):
    """Pixels 1, 2, 3, ...: every window of the zero-padded batch is told apart by its values."""
    count = torch.Size(shape).numel()
    return torch.arange(1, count + 1, dtype=torch.float32).view(shape)


@settings(max_examples=40, deadline=None)
@given(shapes, st.integers(1, 5), st.integers(0, 2**31 - 1))
def test_crop_is_a_window_of_the_padded_image(shape, padding, seed):
    batch = distinct_batch(shape)
    out = random_crop(batch, padding, seeded(seed))
    assert out.shape == batch.shape and out.dtype == batch.dtype
    assert torch.equal(out, random_crop(batch, padding, seeded(seed)))
    height, width = shape[2:]
    padded = torch.nn.functional.pad(batch, (padding,) * 4)
    for image in range(shape[0]):
        windows = [
            padded[image, :, top : top + height, left : left + width]
            for top in range(2 * padding + 1)
            for left in range(2 * padding + 1)
        ]
        assert sum(torch.equal(out[image], window) for window in windows) >= 1


def test_crop_uses_every_offset():
    batch = distinct_batch((400, 1, 3, 3))
    out = random_crop(batch, 1, seeded(0))
    # the top-left output pixel is padding (0) exactly when the window starts in the padding
    top_left_in_padding = (out[:, 0, 0, 0] == 0).float().mean().item()
    assert 1 / 2 < top_left_in_padding < 2 / 3  # 5 of the 9 offsets start in the padding


@settings(max_examples=20, deadline=None)
@given(shapes)
def test_crop_with_no_padding_is_identity(shape):
    batch = torch.rand(shape)
    assert random_crop(batch, 0, seeded(0)) is batch


@settings(max_examples=30, deadline=None)
@given(shapes, st.integers(0, 2**31 - 1))
def test_flip_twice_is_identity(shape, seed):
    batch = torch.rand(shape)
    once = random_hflip(batch, seeded(seed))
    assert once.shape == batch.shape
    for image in range(shape[0]):
        assert torch.equal(once[image], batch[image]) or torch.equal(
            once[image], batch[image].flip(-1)
        )
    assert torch.equal(random_hflip(once, seeded(seed)), batch)


def test_flip_probability_extremes():
    batch = torch.rand(5, 2, 3, 4)
    assert torch.equal(random_hflip(batch, seeded(1), p=1.0), batch.flip(-1))
    assert torch.equal(random_hflip(batch, seeded(1), p=0.0), batch)


def test_flip_without_generator_keeps_images():
    batch = torch.rand(3, 1, 2, 2)
    out = random_hflip(batch)
    assert all(
        torch.equal(out[i], batch[i]) or torch.equal(out[i], batch[i].flip(-1)) for i in range(3)
    )


def test_normalize_batch_values():
    batch = torch.tensor([[[[0.0, 1.0]], [[0.5, 0.25]]]])
    out = normalize_batch(batch, (0.5, 0.25), (0.5, 0.25))
    assert torch.equal(out, torch.tensor([[[[-1.0, 1.0]], [[1.0, 0.0]]]]))


def test_normalize_batch_channel_mismatch():
    with pytest.raises(TopopruneError, match="^normalisation has 1 means and 1 stds for a batch"):
        normalize_batch(torch.zeros(1, 3, 2, 2), (0.5,), (0.2,))


@pytest.mark.parametrize(
    "call",
    [
        lambda x: random_crop(x, 1),
        random_hflip,
        lambda x: normalize_batch(x, (0.0,), (1.0,)),
    ],
)
def test_single_image_is_rejected(call):
    with pytest.raises(
        TopopruneError, match=r"^expected a batch of images B×C×H×W; got shape \(1, 4, 4\)"
    ):
        call(torch.zeros(1, 4, 4))


def test_negative_padding_is_rejected():
    with pytest.raises(TopopruneError, match="^padding must be a non-negative integer"):
        random_crop(torch.zeros(1, 1, 2, 2), -1)


def splits_named(name, image_size=(32, 32), channels=3):
    empty = InMemoryImages(torch.zeros(0, channels, *image_size), torch.zeros(0))
    return DatasetSplits(
        train=empty,
        val=empty,
        test=empty,
        num_classes=10,
        in_channels=channels,
        image_size=image_size,
        mean=(0.5,) * channels,
        std=(0.25,) * channels,
        name=name,
    )


@pytest.mark.parametrize(
    "name, image_size, padding, flip",
    [
        ("cifar10", (32, 32), 4, True),
        ("cifar100", (32, 32), 4, True),
        ("svhn", (32, 32), 4, False),
        ("imagefolder", (224, 224), 28, True),
        ("imagefolder", (64, 96), 8, True),
        ("digits", (8, 8), 0, False),
        ("mnist5k", (28, 28), 0, False),
        ("synthetic", (32, 32), 0, False),
    ],
)
def test_train_augment_defaults(name, image_size, padding, flip):
    augment = train_augment(splits_named(name, image_size))
    assert augment == BatchTransform((0.5,) * 3, (0.25,) * 3, padding=padding, flip=flip)


def test_normalize_only_normalises():
    splits = splits_named("cifar10")
    batch = torch.rand(4, 3, 32, 32)
    assert normalize(splits) == BatchTransform((0.5,) * 3, (0.25,) * 3)
    assert torch.equal(normalize(splits)(batch), (batch - 0.5) / 0.25)


def test_augment_is_seeded_and_keeps_shape():
    augment = train_augment(splits_named("cifar10"))
    batch = torch.rand(16, 3, 32, 32)
    out = augment(batch, seeded(4))
    assert out.shape == batch.shape and out.dtype == torch.float32
    assert torch.equal(out, augment(batch, seeded(4)))
    assert not torch.equal(out, augment(batch, seeded(5)))
    by_hand = normalize_batch(
        random_hflip(random_crop(batch, 4, g := seeded(4)), g), (0.5,) * 3, (0.25,) * 3
    )
    assert torch.equal(out, by_hand)
