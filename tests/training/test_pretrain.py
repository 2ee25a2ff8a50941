"""Self-paced contrastive pretraining with meta-labels: weights, positives, frames, the command."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from hc_studio.core.cli import main
from hc_studio.core.phantom import make_phantom_batch
from hc_studio.core.run_folder import RunFolder
from hc_studio.core.training import pretrain
from hc_studio.core.training.checkpoint import load_checkpoint
from hc_studio.core.training.pretrain import (
    UNKNOWN,
    PatientBatchSampler,
    PretrainSettings,
    meta_positive_mask,
    pixel_bands,
    self_paced_contrastive_loss,
    self_paced_gamma,
    self_paced_weights,
)
from hc_studio.models.unet import UNet

TINY = PretrainSettings(iterations=3, batch_size=4, image_size=(32, 48), width=4, seed=3)


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny tensors gain nothing from a second thread, only synchronisation waits."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def hc18_like_folder(tmp_path_factory) -> Path:
    """Eight phantom frames of four patients (HC18 names) with a pixel-size CSV, and one file
    that is not an image."""
    folder = tmp_path_factory.mktemp("pretrain_frames")
    lines = ["filename,pixel size(mm)"]
    for i, phantom in enumerate(make_phantom_batch(8, shape=(64, 96), seed=2)):
        name = f"{i // 2:03d}_{'' if i % 2 == 0 else '2'}HC.png"
        cv2.imwrite(str(folder / name), (phantom.image * 255).astype(np.uint8))
        lines.append(f"{name},{0.10 + 0.02 * i:.2f}")
    (folder / "pixel_size.csv").write_text("\n".join(lines) + "\n")
    (folder / "009_HC.png").write_bytes(b"not a png")
    return folder


def test_self_paced_weights_grow_with_the_age_of_training() -> None:
    gammas = [self_paced_gamma(step, 100, PretrainSettings()) for step in (0, 25, 50, 100)]
    assert gammas[0] == PretrainSettings().gamma_start
    assert gammas[-1] == PretrainSettings().gamma_end
    assert gammas == sorted(gammas) and len(set(gammas)) == 4
    pair_losses = torch.tensor([0.5, 2.0, 4.0, 8.0])
    weights = [self_paced_weights(pair_losses, gamma) for gamma in gammas]
    for younger, older in zip(weights, weights[1:]):
        assert bool((older >= younger).all()) and bool((older > younger).any())
    assert float(weights[0][-1]) == 0.0  # a hard pair is left out at first
    assert weights[0][0] > weights[0][1] > weights[0][2]  # easier pairs weigh more


def test_meta_label_positives_share_a_known_label() -> None:
    labels = torch.tensor([0, 0, 1, UNKNOWN, UNKNOWN, 1])
    mask = meta_positive_mask(labels)
    expected = {(0, 1), (1, 0), (2, 5), (5, 2)}
    assert {tuple(p) for p in torch.nonzero(mask).tolist()} == expected


def test_loss_weights_only_meta_pairs_and_always_the_twin_view() -> None:
    torch.manual_seed(0)
    first = torch.nn.functional.normalize(torch.randn(4, 8), dim=1)
    second = torch.nn.functional.normalize(first + 0.1 * torch.randn(4, 8), dim=1)
    patients = torch.tensor([7, 7, 3, 4])
    young = self_paced_contrastive_loss(first, second, patients, gamma=0.5, temperature=0.5)
    old = self_paced_contrastive_loss(first, second, patients, gamma=1e6, temperature=0.5)
    assert young.weak_pairs == old.weak_pairs == 2 * 4  # frames 0 and 1, both views each way
    assert old.weak_weight > young.weak_weight
    # With no meta-label in common the loss is instance discrimination: gamma is irrelevant.
    alone = torch.tensor([0, 1, 2, 3])
    a = self_paced_contrastive_loss(first, second, alone, gamma=0.5, temperature=0.5)
    b = self_paced_contrastive_loss(first, second, alone, gamma=1e6, temperature=0.5)
    assert a.weak_pairs == 0 and math.isnan(a.weak_weight)
    assert torch.allclose(a.loss, b.loss)


def test_pixel_bands_are_quantiles_and_unknown_sizes_have_none() -> None:
    codes, edges = pixel_bands([0.1, 0.2, None, 0.3, 0.4], count=2)
    assert edges == [pytest.approx(0.25)]
    assert codes.tolist() == [0, 0, UNKNOWN, 1, 1]


def test_patient_batches_keep_frames_of_one_patient_together() -> None:
    patients = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
    sampler = PatientBatchSampler(patients, 4, 2, torch.Generator().manual_seed(0))
    for _ in range(6):
        batch = sampler.next_indices()
        assert len(batch) == 4 and len(set(batch.tolist())) == 4
        assert sorted(patients[batch].tolist()) in (
            [a, a, b, b] for a in range(4) for b in range(4)
        )


def test_frames_carry_patient_and_pixel_band_and_bad_files_are_reported(hc18_like_folder) -> None:
    problems = []
    frames = pretrain.collect_frames([hc18_like_folder], (32, 48), 4, problems=problems)
    assert len(frames) == 8 and frames.images.shape == (8, 1, 32, 48)
    assert [Path(p.path).name for p in problems] == ["009_HC.png"]
    names = [Path(path.split("#")[0]).name for path in frames.paths]
    patient = {name: int(code) for name, code in zip(names, frames.patients)}
    assert patient["000_HC.png"] == patient["000_2HC.png"] != patient["001_HC.png"]
    band = {name: int(code) for name, code in zip(names, frames.bands)}
    assert band["000_HC.png"] == 0 and band["003_2HC.png"] == 3


def test_pretrained_encoder_differs_from_random_init_and_train_init_loads_it(
    hc18_like_folder, tmp_path, capsys, phantom_labelled, tiny_run
) -> None:
    out = tmp_path / "encoder.pt"
    pretrain.pretrain([hc18_like_folder], out, TINY, torch.device("cpu"), lambda event: None)
    config, encoder = pretrain.load_encoder(out)
    assert config["width"] == 4
    torch.manual_seed(TINY.seed)
    own_start = UNet(width=4).state_dict()
    changed = [k for k, v in encoder.items() if not torch.equal(v, own_start[k])]
    assert "inc.0.weight" in changed and "downs.3.3.weight" in changed
    assert load_checkpoint(out)["pretrain"]["method"] == "contrastive-meta"
    run_dir = tmp_path / "run"
    arguments = ["--labeled", str(phantom_labelled), "--iterations", "1", "--out", str(run_dir)]
    assert main(["train", *tiny_run, "--no-stdin", "--init", str(out), *arguments]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["event"] == "done"
    trained = load_checkpoint(RunFolder(run_dir).last_checkpoint)["model"]["state"]
    # The run starts from the encoder, not from its own (seed 0) initialisation: one SGD step
    # later its weights are still near the encoder's.
    torch.manual_seed(0)
    trainer_start = UNet(width=4).state_dict()["inc.0.weight"]
    from_encoder = (trained["inc.0.weight"] - encoder["inc.0.weight"]).abs().max()
    assert from_encoder < (trainer_start - encoder["inc.0.weight"]).abs().max() / 10


def test_pretrain_command_writes_the_encoder_with_json_progress(hc18_like_folder, tmp_path) -> None:
    out = tmp_path / "enc.pt"
    command = [
        sys.executable, "-m", "hc_studio.core.cli", "pretrain",
        "--frames", str(hc18_like_folder), "--iterations", "2", "--batch-size", "4",
        "--image-size", "32", "48", "--width", "4", "--out", str(out), "--device", "cpu",
        "--threads", "1",
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stderr[-2000:]
    events = [json.loads(line) for line in result.stdout.splitlines()]
    kinds = [event["event"] for event in events]
    assert kinds[-2:] == ["checkpoint", "done"] and "start" in kinds and "progress" in kinds
    assert "import_problem" in kinds
    progress = [e for e in events if e["event"] == "progress"]
    assert progress[-1]["iteration"] == 2 and "patient" in progress[-1]["losses"]
    assert out.is_file() and pretrain.load_encoder(out)[0]["width"] == 4


def test_pretrain_command_reports_a_missing_folder(tmp_path, capsys) -> None:
    missing = tmp_path / "nowhere"
    code = main(["pretrain", "--frames", str(missing), "--out", str(tmp_path / "e.pt")])
    assert code == 1
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert events[-1]["event"] == "error" and "nowhere" in events[-1]["message"]
    assert not (tmp_path / "e.pt").exists()
