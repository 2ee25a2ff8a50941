"""The scripts that build the two-pass model: head crops, int8 quantisation, the assembled pair."""

from __future__ import annotations

import json

import cv2
import numpy as np
import onnx
import pytest
from assemble_model_pair import main as assemble
from hc_studio.core.dataset import import_labelled_folder
from hc_studio.core.ellipse import fit_outline_mask
from hc_studio.core.head_crop import CropWindow
from hc_studio.core.inference import SegmentationEngine
from hc_studio.core.phantom import make_phantom
from make_head_crops import main as make_crops
from quantize_model import calibration_inputs


def _phantom_folder(folder, count=4):
    folder.mkdir()
    for seed in range(count):
        image = make_phantom(seed=seed).image
        cv2.imwrite(str(folder / f"{seed:03d}_HC.png"), np.round(image * 255).astype(np.uint8))
    return folder


def test_head_crops_are_a_labelled_folder_with_the_reference_on_the_crop(hc18_dir, tmp_path):
    frames = ["001_HC.png", "002_HC.png", "010_2HC.png"]
    split = tmp_path / "split.json"
    split.write_text(json.dumps({"train": {"frames": frames}}))
    out = tmp_path / "crops"
    code = make_crops(
        [str(hc18_dir / "training_set"), "--split", str(split), "--side", "train"]
        + ["--out", str(out), "--size", "96", "--per-frame", "2"]
    )
    assert code == 0
    result = import_labelled_folder(out)
    assert len(result.pairs) == 6 and not result.problems
    assert {pair.patient for pair in result.pairs} == {"001", "002", "010"}
    # The crop's mask is the frame's reference ellipse seen through a window of its size.
    pair = next(p for p in result.pairs if p.image_path.name == "010_2HC_c1.png")
    outline = cv2.imread(str(hc18_dir / "training_set" / "010_2HC_Annotation.png"), 0) > 127
    reference = fit_outline_mask(outline)
    crop_a = pair.ellipse_px.a
    side = reference.a / crop_a * 96  # frame pixels the window spans
    assert 2 * 1.15 * reference.a - 2 <= side <= 2 * 1.4 * reference.a + 2
    assert pair.spacing.calibrated
    assert pair.read_image().shape == (96, 96)


def test_calibration_inputs_take_frames_not_masks_at_the_model_size(tmp_path):
    folder = _phantom_folder(tmp_path / "frames")
    (folder / "000_HC_Annotation.png").write_bytes((folder / "000_HC.png").read_bytes())
    inputs = calibration_inputs(folder, 32, 48, count=10)
    assert len(inputs) == 4 and inputs[0].shape == (1, 1, 32, 48)
    assert inputs[0].min() >= 0.0 and inputs[0].max() <= 1.0
    with pytest.raises(ValueError, match="no calibration frames"):
        calibration_inputs(tmp_path / "frames" / "none", 32, 48, count=10)


def test_the_assembled_pair_loads_with_its_refiner_and_names_its_float_weights(
    tmp_path, onnx_model_factory, tiny_model_metadata
):
    first = onnx_model_factory(tmp_path / "float" / "first_float.onnx", tiny_model_metadata)
    square = {
        **tiny_model_metadata,
        "hc_studio.input_height": "128",
        "hc_studio.input_width": "128",
    }
    refiner = onnx_model_factory(tmp_path / "float" / "refine_float.onnx", square)
    frames = _phantom_folder(tmp_path / "frames")
    figures = tmp_path / "figures.json"
    figures.write_text(json.dumps({"frames": 79}))
    out = tmp_path / "models"
    code = assemble(
        ["--first", str(first), "--first-calibration", str(frames), "--refiner", str(refiner)]
        + ["--refiner-calibration", str(frames), "--file", "pair", "--name", "pair-v2"]
        + ["--validation", str(figures), "--out-dir", str(out), "--margin", "1.3"]
    )
    assert code == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "first_float.onnx",
        "pair.onnx",
        "pair_refine.onnx",
    ]
    engine = SegmentationEngine(out / "pair.onnx", "cpu")
    assert engine.name == "pair-v2" and engine.info.refine_margin == 1.3
    assert engine.refiner is not None and engine.refiner.name == "pair-v2-refine"
    metadata = {p.key: p.value for p in onnx.load(str(out / "pair.onnx")).metadata_props}
    assert metadata["hc_studio.float_weights"] == "first_float.onnx"
    assert json.loads(metadata["hc_studio.validation"]) == {"frames": 79}
    # The pair measures a phantom through both passes.
    phantom = make_phantom(seed=2)
    window = CropWindow.around(phantom.ellipse_px, engine.info.refine_margin)
    crop = window.cut(phantom.image, 128)
    assert engine.refiner.predict(crop).prob.max() > 0.9


def test_a_candidate_refiner_is_scored_through_a_pair_naming_it(
    tmp_path, onnx_model_factory, tiny_model_metadata
):
    from select_candidate import pair_with

    first = onnx_model_factory(tmp_path / "first.onnx", tiny_model_metadata)
    square = {**tiny_model_metadata, "hc_studio.input_height": "96"}
    square["hc_studio.input_width"] = "96"
    candidate = onnx_model_factory(tmp_path / "candidates" / "iter_400-ema.onnx", square)
    pair = pair_with(first, candidate, 1.3)
    assert pair == tmp_path / "candidates" / "iter_400-ema-pair.onnx"
    engine = SegmentationEngine(pair, "cpu")
    assert engine.refiner is not None and engine.refiner.model_path == candidate
    assert engine.info.refine_margin == 1.3
    assert first.read_bytes() != pair.read_bytes()  # the first model itself is untouched
    assert "hc_studio.refiner" not in {p.key for p in onnx.load(str(first)).metadata_props}


def test_averaged_checkpoints_hold_the_mean_weights(tmp_path):
    import torch
    from average_checkpoints import main as average
    from hc_studio.core.training.checkpoint import load_checkpoint, save_checkpoint

    def checkpoint(path, value):
        state = {
            "conv.weight": torch.full((2, 2), value),
            "bn.num_batches_tracked": torch.tensor(3),
        }
        save_checkpoint(path, {"model": {"config": {"width": 4}, "state": state}, "teacher": state})
        return str(path)

    paths = [checkpoint(tmp_path / f"iter_{i}.pt", float(i)) for i in (1, 2, 6)]
    assert average([*paths, "--out", str(tmp_path / "avg.pt")]) == 0
    averaged = load_checkpoint(tmp_path / "avg.pt")
    assert torch.equal(averaged["model"]["state"]["conv.weight"], torch.full((2, 2), 3.0))
    assert int(averaged["model"]["state"]["bn.num_batches_tracked"]) == 3
    assert averaged["teacher"] is None
    assert average([paths[0], "--out", str(tmp_path / "one.pt")]) == 2


def test_a_quantisation_recipe_names_the_layers_it_keeps_in_float(
    tmp_path, onnx_model_factory, tiny_model_metadata
):
    from quantize_model import Recipe, float_nodes
    from quantize_model import main as quantize

    unnamed = onnx.load(str(onnx_model_factory(tmp_path / "u.onnx", tiny_model_metadata)))
    for index, node in enumerate(unnamed.graph.node):
        node.name = f"/network/{node.op_type}_{index}"
    model = tmp_path / "tiny.onnx"
    onnx.save(unnamed, str(model))
    graph = unnamed.graph
    last_two = [graph.node[-1].name, graph.node[-2].name]  # the sigmoid and what feeds it
    assert float_nodes(model, Recipe()) == []
    assert float_nodes(model, Recipe(float_head=True)) == last_two
    named = float_nodes(model, Recipe(float_prefixes=(graph.node[0].name,)))
    assert named == [graph.node[0].name]
    frames = _phantom_folder(tmp_path / "frames")
    out = tmp_path / "int8.onnx"
    args = [str(model), "--calibration", str(frames), "--out", str(out), "--float-head"]
    assert quantize([*args, "--percentile", "99.99"]) == 0
    assert SegmentationEngine(out, "cpu").name == "tiny-threshold"  # metadata kept
    # The float model training starts from must be beside the int8 one, and is named by it.
    named_out = tmp_path / "named_int8.onnx"
    float_args = [str(model), "--calibration", str(frames), "--out", str(named_out)]
    assert quantize([*float_args, "--float-weights", "absent.onnx"]) == 2
    assert not named_out.exists()
    assert quantize([*float_args, "--float-weights", model.name]) == 0
    properties = {p.key: p.value for p in onnx.load(str(named_out)).metadata_props}
    assert properties["hc_studio.float_weights"] == model.name


def test_the_teachers_of_several_runs_average_and_a_missing_teacher_is_named(tmp_path):
    import torch
    from average_checkpoints import averaged_checkpoint
    from average_checkpoints import main as average
    from hc_studio.core.training.checkpoint import save_checkpoint

    def checkpoint(name, student, teacher):
        path = tmp_path / name
        states = [{"w": torch.full((2,), v)} if v is not None else None for v in (student, teacher)]
        model = {"config": {"width": 4}, "state": states[0]}
        save_checkpoint(path, {"model": model, "teacher": states[1]})
        return path

    runs = [checkpoint("a.pt", 0.0, 1.0), checkpoint("b.pt", 10.0, 5.0)]
    soup = averaged_checkpoint(runs, "teacher")
    assert torch.equal(soup["model"]["state"]["w"], torch.full((2,), 3.0))  # not the students' 5
    assert soup["teacher"] is None
    lone = checkpoint("no_teacher.pt", 2.0, None)
    with pytest.raises(ValueError, match="no_teacher.pt: has no EMA teacher"):
        averaged_checkpoint([runs[0], lone], "teacher")
    out = str(tmp_path / "soup.pt")
    assert average([str(runs[0]), str(lone), "--weights", "teacher", "--out", out]) == 2


def test_greedy_soup_takes_ingredients_best_first_and_keeps_only_those_that_help() -> None:
    from weight_soup import greedy_soup

    alone = {0: 2.0, 1: 1.5, 2: 1.9, 3: 3.0}

    # Soups err the mean of their ingredients' values on both frames, less 0.3 when ingredient 2
    # is in one with others: 2 helps, 0 and 3 (alone worse than the soup) do not.
    def errors(members):
        value = sum(alone[m] for m in members) / len(members)
        value -= 0.3 if 2 in members and len(members) > 1 else 0.0
        return {"a.png": value, "b.png": value}

    members, steps = greedy_soup(4, errors)
    assert [step.members for step in steps] == [(1,), (1, 2), (0, 1, 2), (1, 2, 3)]
    assert [step.kept for step in steps] == [True, True, False, False]
    assert members == (1, 2)
    assert steps[1].score == pytest.approx(1.4)
    assert steps[1].kept_score == pytest.approx(1.5)
    assert steps[1].frames == 2
    with pytest.raises(ValueError):
        greedy_soup(0, errors)


def test_greedy_soup_compares_soups_on_the_frames_both_measured() -> None:
    from weight_soup import greedy_soup

    # Ingredient 1 alone is the best; the soup (0, 1) errs more on every frame it measures but
    # refuses the hardest frame, so its own mean (1.0) is lower than 1's (about 1.6).
    table = {
        (0,): {"a.png": 2.0, "b.png": 2.0, "c.png": 4.0},
        (1,): {"a.png": 0.8, "b.png": 0.8, "c.png": 3.2},
        (0, 1): {"a.png": 1.0, "b.png": 1.0, "c.png": None},
    }
    members, steps = greedy_soup(2, table.__getitem__)
    assert members == (1,)
    assert steps[1].kept is False
    assert steps[1].frames == 2
    assert (steps[1].score, steps[1].kept_score) == pytest.approx((1.0, 0.8))
