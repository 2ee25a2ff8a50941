"""benchmarks/slim_snapshots.py: one network per checkpoint, weights in half precision."""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

import slim_snapshots  # noqa: E402
from hc_studio.core.training.checkpoint import load_checkpoint, save_checkpoint  # noqa: E402
from hc_studio.core.training.export_onnx import (  # noqa: E402
    export_checkpoint,
    load_onnx_weights,
)
from hc_studio.models.unet import UNet  # noqa: E402


def _run_checkpoint(path: Path, with_teacher: bool = True) -> tuple[UNet, UNet]:
    torch.manual_seed(0)
    student, teacher = UNet(width=4), UNet(width=4)
    # BatchNorm statistics unlike the defaults, one variance below half precision's range.
    with torch.no_grad():
        teacher.inc[1].running_var.fill_(1e-8)
        teacher.inc[1].running_mean.uniform_(-1, 1)
    save_checkpoint(
        path,
        {
            "model": {"config": student.config, "state": student.state_dict()},
            "teacher": teacher.state_dict() if with_teacher else None,
            "optimizer": {"state": {"big": torch.zeros(1000)}},
            "settings": {"image_size": [32, 48]},
            "method": {"name": "ersr"},
            "iteration": 100,
            "best": {"dice": 0.5},  # the run's best score, not either network's
        },
    )
    return student, teacher


def test_each_network_is_kept_alone_in_half_precision(tmp_path: Path) -> None:
    student, teacher = _run_checkpoint(tmp_path / "iter_000100.pt")
    code = slim_snapshots.main(
        [
            str(tmp_path / "iter_000100.pt"),
            "--out-dir",
            str(tmp_path / "slim"),
            "--networks",
            "ema",
            "student",
        ]
    )
    assert code == 0
    for name, network in (("ema", teacher), ("student", student)):
        slim = load_checkpoint(tmp_path / "slim" / f"iter_000100-{name}.pt")
        assert slim["teacher"] is None and "optimizer" not in slim
        assert slim["best"] is None
        assert slim["iteration"] == 100
        state = slim["model"]["state"]
        for key, value in network.state_dict().items():
            if not value.is_floating_point():
                assert torch.equal(state[key], value)
            elif "running_" in key:
                assert state[key].dtype == torch.float32 and torch.equal(state[key], value)
            else:
                assert state[key].dtype == torch.float16
                assert torch.equal(state[key], value.half())
    # The tiny variance survives (in half precision it would be 0).
    ema = load_checkpoint(tmp_path / "slim" / "iter_000100-ema.pt")["model"]["state"]
    assert ema["inc.1.running_var"].min().item() == pytest.approx(1e-8)


def test_a_slim_checkpoint_exports_with_the_rounded_weights(tmp_path: Path) -> None:
    _, teacher = _run_checkpoint(tmp_path / "iter_000100.pt")
    slim_snapshots.main([str(tmp_path / "iter_000100.pt"), "--out-dir", str(tmp_path)])
    model = export_checkpoint(tmp_path / "iter_000100-ema.pt", tmp_path / "ema.onnx", "ema")
    _, weights = load_onnx_weights(model)
    key = next(k for k in weights if k.endswith("head.weight"))
    assert torch.equal(weights[key], teacher.state_dict()[key].half().float())


def test_a_checkpoint_without_a_teacher_is_named_and_the_others_go_on(
    tmp_path: Path, capsys
) -> None:
    _run_checkpoint(tmp_path / "iter_000100.pt", with_teacher=False)
    _run_checkpoint(tmp_path / "iter_000200.pt")
    code = slim_snapshots.main(
        [
            str(tmp_path / "iter_000100.pt"),
            str(tmp_path / "iter_000200.pt"),
            "--out-dir",
            str(tmp_path / "slim"),
        ]
    )
    assert code == 1
    assert "iter_000100.pt: the checkpoint has no EMA teacher" in capsys.readouterr().err
    assert not (tmp_path / "slim" / "iter_000100-ema.pt").exists()
    assert (tmp_path / "slim" / "iter_000200-ema.pt").exists()
