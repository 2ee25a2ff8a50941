"""Cine playback model: frame rate from the DICOM header, play/pause/step/loop, frame cache."""

from __future__ import annotations

import pytest
from hc_studio.core.cine import DEFAULT_FPS, CinePlayer, FrameCache, cine_frame_rate
from pydicom.dataset import Dataset


def header(**attributes) -> Dataset:
    dataset = Dataset()
    for name, value in attributes.items():
        setattr(dataset, name, value)
    return dataset


def test_frame_rate_prefers_frame_time_then_cine_rate_then_display_rate() -> None:
    both = cine_frame_rate(header(FrameTime="40", CineRate=10, RecommendedDisplayFrameRate=5))
    assert (both.fps, both.source) == (pytest.approx(25.0), "FrameTime")
    assert cine_frame_rate(header(CineRate=12)).fps == 12
    display = cine_frame_rate(header(RecommendedDisplayFrameRate=30))
    assert (display.fps, display.source) == (30, "RecommendedDisplayFrameRate")
    assert cine_frame_rate(header()).source == "default"
    assert cine_frame_rate(header()).fps == DEFAULT_FPS


def test_unusable_frame_rates_are_passed_over_with_a_note() -> None:
    rate = cine_frame_rate(header(FrameTime="0", CineRate=5000, RecommendedDisplayFrameRate=20))
    assert (rate.fps, rate.source) == (20, "RecommendedDisplayFrameRate")
    assert len(rate.notes) == 2 and "FrameTime" in rate.notes[0]


def test_frame_rate_read_from_a_file(tmp_path) -> None:
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    dataset = header(FrameTime="33.3", SOPClassUID="1.2.840.10008.5.1.4.1.1.3.1")
    dataset.SOPInstanceUID = generate_uid()
    dataset.file_meta = FileMetaDataset()
    dataset.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    dataset.save_as(tmp_path / "c.dcm", enforce_file_format=True)
    assert cine_frame_rate(tmp_path / "c.dcm").fps == pytest.approx(30.03, abs=0.01)


def test_playback_advances_by_elapsed_time_and_loops() -> None:
    player = CinePlayer(5, fps=10)
    assert player.tick_ms == 100
    assert not player.advance(1.0)  # paused: time does not move the clip
    player.play()
    assert not player.advance(0.05)  # half a frame
    assert player.advance(0.05) and player.index == 1
    assert player.advance(0.35) and player.index == 4  # a late timer skips frames
    assert player.advance(0.05) and player.index == 0  # the half frame left over, then wraps
    player.speed = 2.0
    assert player.advance(0.1) and player.index == 2


def test_without_loop_playback_stops_on_the_last_frame_and_restarts() -> None:
    player = CinePlayer(3, fps=10, loop=False)
    player.play()
    player.advance(1.0)
    assert (player.index, player.playing) == (2, False)
    player.play()
    assert player.index == 0 and player.playing


def test_step_pauses_and_moves() -> None:
    player = CinePlayer(4, fps=25)
    player.play()
    assert player.step(-1) == 3 and not player.playing  # loops backwards
    player.loop = False
    assert player.step(5) == 3  # clamped
    assert player.seek(-2) == 0
    player.toggle()
    assert player.playing
    player.toggle()
    assert not player.playing


def test_a_single_frame_never_plays_and_bad_input_is_refused() -> None:
    still = CinePlayer(1, fps=25)
    still.play()
    assert not still.playing
    with pytest.raises(ValueError, match="at least one frame"):
        CinePlayer(0, fps=25)
    with pytest.raises(ValueError, match="positive"):
        CinePlayer(3, fps=0)


def test_frame_cache_forgets_on_a_new_context() -> None:
    cache: FrameCache[str] = FrameCache(4, context=("model-a", 0.1))
    cache.put(0, "r0")
    cache.put(2, "r2")
    assert cache.get(0) == "r0" and cache.get(1) is None
    assert cache.missing() == [1, 3] and cache.missing([2, 3]) == [3]
    cache.invalidate(0)
    assert cache.get(0) is None and len(cache) == 1
    cache.set_context(("model-a", 0.1))
    assert len(cache) == 1  # the same settings keep the results
    cache.set_context(("model-b", 0.1))
    assert len(cache) == 0
    with pytest.raises(IndexError, match="outside the clip"):
        cache.put(4, "r4")
