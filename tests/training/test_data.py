"""Training data: resized targets, the cache, samplers and augmentation."""

from __future__ import annotations

import shutil

import cv2
import numpy as np
import pytest
import torch
from hc_studio.core.dataset import import_labelled_folder, import_unlabelled_folder
from hc_studio.core.ellipse import Ellipse, rasterize_ellipse
from hc_studio.core.training.augment import AugmentConfig, augment
from hc_studio.core.training.data import (
    DataOptions,
    InfiniteSampler,
    NoLabelledDataError,
    ellipse_at_size,
    prepare_data,
)


def test_ellipse_at_size_matches_the_area_resized_full_mask() -> None:
    frame_shape, size = (540, 800), (64, 96)
    ellipse = Ellipse.normalised(410.3, 260.7, 180.2, 130.4, 0.4)
    full = rasterize_ellipse(ellipse, frame_shape).astype(np.float32)
    coverage = cv2.resize(full, (size[1], size[0]), interpolation=cv2.INTER_AREA)
    small = rasterize_ellipse(ellipse_at_size(ellipse, frame_shape, size), size)
    # Pixel-centre rasterisation at the small size agrees with the true coverage > 0.5 except
    # at a few boundary pixels, and keeps the area.
    assert np.count_nonzero(small != (coverage > 0.5)) < 0.02 * small.sum()
    assert small.sum() == pytest.approx(coverage.sum(), rel=0.02)


def test_prepare_data_splits_by_patient_and_caches(phantom_labelled, phantom_unlabelled, tmp_path):
    options = DataOptions(
        labelled_dir=phantom_labelled,
        unlabelled_dir=phantom_unlabelled,
        image_size=(32, 48),
        val_fraction=0.2,
        labelled_fraction=0.5,
    )
    cache = tmp_path / "cache.npz"
    data = prepare_data(options, cache)
    assert data.counts() == {"labelled": 4, "unlabelled": 10, "validation": 2, "skipped": 0}
    assert (
        data.labelled.images.shape == (4, 1, 32, 48) and data.labelled.images.dtype == torch.uint8
    )
    assert set(data.labelled.masks.unique().tolist()) == {0, 1}
    patients = [{i.patient for i in s.infos} for s in (data.labelled, data.validation)]
    assert not patients[0] & patients[1]
    statuses = []
    again = prepare_data(options, cache, statuses.append)
    assert statuses and statuses[0].startswith("loaded")  # no decoding the second time
    assert torch.equal(again.labelled.images, data.labelled.images)
    assert again.validation.infos == data.validation.infos


def test_a_changed_folder_invalidates_the_cache(phantom_labelled, tmp_path) -> None:
    folder = tmp_path / "labelled"
    shutil.copytree(phantom_labelled, folder)
    options = DataOptions(labelled_dir=folder, image_size=(32, 48))
    cache = tmp_path / "cache.npz"
    first = prepare_data(options, cache)
    (folder / "010_HC.png").unlink()
    second = prepare_data(options, cache)
    assert (
        len(second.labelled) + len(second.validation)
        == len(first.labelled) + len(first.validation) - 1
    )


def test_no_readable_labelled_frame_raises(phantom_labelled, tmp_path) -> None:
    folder = tmp_path / "labelled"
    shutil.copytree(phantom_labelled, folder)
    for image in folder.glob("*_HC.png"):
        image.write_bytes(b"broken")
    with pytest.raises(NoLabelledDataError, match="no usable labelled frame"):
        prepare_data(DataOptions(labelled_dir=folder, image_size=(32, 48)))


def test_sampler_resumes_exactly_and_shards_by_rank() -> None:
    sampler = InfiniteSampler(5, 3, seed=1)
    for _ in range(2):
        sampler.next_indices()
    state = sampler.state_dict()
    expected = [sampler.next_indices().tolist() for _ in range(4)]
    resumed = InfiniteSampler(5, 3, seed=1)
    resumed.load_state_dict(state)
    assert [resumed.next_indices().tolist() for _ in range(4)] == expected
    ranks = [InfiniteSampler(8, 2, seed=3, rank=r, world_size=2) for r in (0, 1)]
    for _ in range(4):
        first, second = (set(s.next_indices().tolist()) for s in ranks)
        assert not first & second


def test_augment_moves_image_and_mask_together_and_keeps_masks_binary() -> None:
    images = torch.zeros(4, 1, 32, 48)
    images[:, :, 8:20, 10:30] = 1.0
    masks = (images > 0.5).float()
    config = AugmentConfig(brightness=0, contrast=0, gamma=0)
    out_images, out_masks = augment(images, masks, torch.Generator().manual_seed(0), config)
    assert set(out_masks.unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(out_masks, (out_images > 0.5).float())
    assert not torch.equal(out_masks, masks)  # something moved
    repeat = augment(images, masks, torch.Generator().manual_seed(0), config)
    assert torch.equal(repeat[0], out_images)


def _with_bad_links(phantom_labelled, tmp_path):
    """A copy of the labelled folder plus a symbolic link loop and a dangling link."""
    folder = tmp_path / "labelled"
    shutil.copytree(phantom_labelled, folder)
    (folder / "loop_a.png").symlink_to("loop_b.png")
    (folder / "loop_b.png").symlink_to("loop_a.png")
    (folder / "011_HC.png").symlink_to("moved_away.png")
    return folder


def test_symlink_loops_and_dangling_links_are_reported_and_skipped(phantom_labelled, tmp_path):
    folder = _with_bad_links(phantom_labelled, tmp_path)
    imported = import_labelled_folder(folder, load_pixels=False)
    problems = {p.path.name: p.problem for p in imported.problems}
    assert problems["loop_a.png"] == problems["loop_b.png"] == "symbolic link loop"
    assert "broken symbolic link" in problems["011_HC.png"]
    assert "moved_away.png" in problems["011_HC.png"]
    assert len(imported.pairs) == 10
    unlabelled = import_unlabelled_folder(folder, load_pixels=False)
    assert {p.path.name for p in unlabelled.problems} == {"loop_a.png", "loop_b.png", "011_HC.png"}
    data = prepare_data(DataOptions(labelled_dir=folder, image_size=(32, 48)), tmp_path / "c.npz")
    assert data.counts()["labelled"] + data.counts()["validation"] == 10
    assert data.counts()["skipped"] == 3


def _damage_truncate(path) -> None:
    path.write_bytes(path.read_bytes()[:200])


def _damage_keys(path) -> None:
    with np.load(path) as archive:
        arrays = {k: archive[k] for k in archive.files if k != "labelled_images"}
    with open(path, "wb") as handle:
        np.savez(handle, **arrays)


def _damage_shapes(path) -> None:
    with np.load(path) as archive:
        arrays = {k: archive[k] for k in archive.files}
    arrays["labelled_masks"] = arrays["labelled_masks"][:, :, :5]
    with open(path, "wb") as handle:
        np.savez(handle, **arrays)


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (_damage_truncate, "truncated"),
        (_damage_keys, "no labelled_images"),
        (_damage_shapes, "labelled masks are uint8"),
    ],
)
def test_a_damaged_cache_is_reported_and_rebuilt(phantom_labelled, tmp_path, damage, reason):
    options = DataOptions(labelled_dir=phantom_labelled, image_size=(32, 48))
    cache = tmp_path / "cache.npz"
    first = prepare_data(options, cache)
    damage(cache)
    statuses = []
    rebuilt = prepare_data(options, cache, statuses.append)
    assert statuses[0].startswith("cache.npz: damaged frame cache")
    assert reason in statuses[0] and statuses[0].endswith("rebuilding it")
    assert torch.equal(rebuilt.labelled.images, first.labelled.images)
    statuses.clear()
    prepare_data(options, cache, statuses.append)  # the rebuilt cache is whole again
    assert statuses[0].startswith("loaded")


def test_mask_label_reaches_the_training_import(tmp_path) -> None:
    from hc_studio.core.training.commands.train import data_options
    from hc_studio.core.training_settings import DataSettings, TrainSettings

    head = rasterize_ellipse(Ellipse(40.0, 30.0, 20.0, 14.0, 0.3), (60, 80)).astype(np.uint8)
    label_map = head * 2
    label_map[50:58, 2:10] = 1  # another structure, label 1
    for index in range(3):
        for sub, pixels in (("images", (head * 200 + 20).astype(np.uint8)), ("masks", label_map)):
            (tmp_path / "clinic" / sub).mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(tmp_path / "clinic" / sub / f"f{index}.png"), pixels)
    data = DataSettings(labelled_dir=tmp_path / "clinic", val_fraction=0.0)
    with pytest.raises(NoLabelledDataError):
        prepare_data(data_options(data, TrainSettings(image_size=(32, 48))))
    chosen = DataSettings(labelled_dir=tmp_path / "clinic", val_fraction=0.0, mask_label=2)
    options = data_options(chosen, TrainSettings(image_size=(32, 48)))
    assert options.mask_label == 2
    assert len(prepare_data(options).labelled) == 3


def test_an_exported_correction_folder_trains_as_it_is(tmp_path) -> None:
    from hc_studio.core.correction_export import export_accepted
    from hc_studio.core.phantom import make_phantom
    from hc_studio.core.records import MeasurementRecord
    from hc_studio.core.spacing import Spacing

    records = []
    for seed in range(3):
        phantom = make_phantom((96, 128), seed=seed)
        path = tmp_path / "exam" / f"frame{seed}.png"
        path.parent.mkdir(exist_ok=True)
        cv2.imwrite(str(path), np.round(phantom.image * 255).astype(np.uint8))
        records.append(
            MeasurementRecord(
                str(path), 0, Spacing.square(0.2), ellipse_px=phantom.ellipse_px, accepted=True
            )
        )
    export_accepted(records, tmp_path / "learned")
    options = DataOptions(labelled_dir=tmp_path / "learned", image_size=(32, 48), val_fraction=0)
    prepared = prepare_data(options)
    assert len(prepared.labelled) == 3 and not prepared.problems


def test_shadow_darkens_a_vertical_band_and_leaves_masks_alone() -> None:
    images = torch.full((6, 1, 16, 64), 0.5)
    masks = torch.zeros(6, 1, 16, 64)
    masks[:, :, 4:12, 16:48] = 1.0
    still = AugmentConfig(
        flip_x=0, flip_y=0, rotate_deg=0, scale=0, shift=0, brightness=0, contrast=0, gamma=0
    )
    shadowed = AugmentConfig(**{**still.__dict__, "shadow": 1.0 - 1e-9})
    out_images, out_masks = augment(images, masks, torch.Generator().manual_seed(1), shadowed)
    assert torch.equal(out_masks, masks)
    # Every frame is darker somewhere, never brighter, and the same down each column.
    assert (out_images <= 0.5 + 1e-6).all()
    assert (out_images.amin(dim=(1, 2, 3)) < 0.5 * (1 - 0.4) + 1e-3).all()
    assert torch.allclose(out_images, out_images[:, :, :1, :].expand_as(out_images))
    # Outside its band a frame keeps its echo: the band is at most 20 % of the width.
    untouched = (out_images == 0.5).float().mean(dim=(1, 2, 3))
    assert (untouched >= 0.8 - 1 / 64).all()


def test_no_shadow_keeps_the_augmentations_of_runs_made_before_it() -> None:
    images = torch.rand(4, 1, 32, 48, generator=torch.Generator().manual_seed(3))
    masks = (images > 0.5).float()
    plain = augment(images, masks, torch.Generator().manual_seed(0), AugmentConfig())
    again = augment(images, masks, torch.Generator().manual_seed(0), AugmentConfig(shadow=0.0))
    assert torch.equal(plain[0], again[0]) and torch.equal(plain[1], again[1])
    shadowed = augment(images, masks, torch.Generator().manual_seed(0), AugmentConfig(shadow=0.5))
    assert torch.equal(shadowed[1], plain[1])  # the geometry is drawn first: the same masks
    assert not torch.equal(shadowed[0], plain[0])
