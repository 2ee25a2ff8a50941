"""Is a candidate model better than the model in use, on a clinic's own labelled frames?

Both models are scored frame by frame with `hc-studio evaluate`'s scoring (`evaluate_pair`), so
the two columns of every frame are paired. Per model: Dice, HD95 and the HC error with its bias
and Bland-Altman limits of agreement (bias +- 1.96 SD of predicted - reference HC). Per frame:
the candidate's difference from the current model.

The verdict (`decide`) rests on paired bootstrap intervals of the mean differences, resampling
patients (all frames of a patient together) when patient ids are known, else frames:

- `too few frames`: fewer than MIN_FRAMES frames scored by both models; no judgement.
- `worse`: the Dice difference's interval lies wholly below 0, or (calibrated frames only, at
  least MIN_FRAMES of them) the HC absolute error difference's interval lies wholly above 0.
- `better`: not worse, and the Dice interval lies wholly above 0 or the HC error interval
  wholly below 0.
- `no different` otherwise.

Frames where the candidate's Dice is more than FLAG_DICE_DROP below the current model's are
listed (`frames_worse`) whatever the verdict: an average gain can hide single frames lost.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

VERDICT_BETTER = "better"
VERDICT_SAME = "no different"
VERDICT_WORSE = "worse"
VERDICT_TOO_FEW = "too few frames"
VERDICTS = (VERDICT_BETTER, VERDICT_SAME, VERDICT_WORSE, VERDICT_TOO_FEW)
MIN_FRAMES = 20
BOOTSTRAP_SAMPLES = 2000
CONFIDENCE = 0.95
FLAG_DICE_DROP = 0.05
LIMITS_OF_AGREEMENT_Z = 1.96
VERDICT_RULE = (
    f"verdict from paired bootstrap {CONFIDENCE:.0%} intervals of the mean per-frame "
    "difference (candidate - current), resampling patients when known, else frames: "
    "'worse' when the Dice interval is wholly below 0 or, with calibrated frames, the HC "
    "absolute error interval wholly above 0; 'better' when not worse and the Dice interval is "
    "wholly above 0 or the HC error interval wholly below 0; 'no different' otherwise; "
    f"'too few frames' under {MIN_FRAMES} frames scored by both models"
)


@dataclass(frozen=True)
class FrameScores:
    """One model's scores of one frame (None where a value does not exist)."""

    file: str
    patient: str
    dice: float | None
    hd95_mm: float | None = None
    hc_pred_mm: float | None = None
    hc_ref_mm: float | None = None

    @property
    def hc_diff_mm(self) -> float | None:
        if self.hc_pred_mm is None or self.hc_ref_mm is None:
            return None
        return self.hc_pred_mm - self.hc_ref_mm

    @property
    def hc_abs_error_mm(self) -> float | None:
        diff = self.hc_diff_mm
        return None if diff is None else abs(diff)


def _finite(values: Sequence[float | None]) -> np.ndarray:
    return np.array([v for v in values if v is not None and math.isfinite(v)], dtype=float)


def _stats(values: Sequence[float | None]) -> dict:
    finite = _finite(values)
    if finite.size == 0:
        return {"n": 0, "mean": None, "median": None, "std": None}
    return {
        "n": int(finite.size),
        "mean": float(finite.mean()),
        "median": float(np.median(finite)),
        "std": float(finite.std(ddof=1)) if finite.size > 1 else 0.0,
    }


def bland_altman(predicted: Sequence[float], reference: Sequence[float]) -> dict | None:
    """Bias (mean of predicted - reference), its limits of agreement and the plot's points."""
    pred, ref = np.asarray(predicted, float), np.asarray(reference, float)
    if pred.size < 2:
        return None
    diff = pred - ref
    bias, sd = float(diff.mean()), float(diff.std(ddof=1))
    return {
        "n": int(pred.size),
        "bias": bias,
        "lower": bias - LIMITS_OF_AGREEMENT_Z * sd,
        "upper": bias + LIMITS_OF_AGREEMENT_Z * sd,
        "means": ((pred + ref) / 2).tolist(),
        "differences": diff.tolist(),
    }


def summarise_model(frames: Sequence[FrameScores]) -> dict:
    """Dice, HD95, HC absolute error and the HC Bland-Altman agreement of one model."""
    with_hc = [f for f in frames if f.hc_diff_mm is not None]
    return {
        "dice": _stats([f.dice for f in frames]),
        "hd95_mm": _stats([f.hd95_mm for f in frames]),
        "hc_abs_error_mm": _stats([f.hc_abs_error_mm for f in frames]),
        "hc_bland_altman": bland_altman(
            [f.hc_pred_mm for f in with_hc], [f.hc_ref_mm for f in with_hc]
        ),
    }


def paired_bootstrap(
    differences: Sequence[float],
    groups: Sequence[str],
    samples: int = BOOTSTRAP_SAMPLES,
    seed: int = 0,
    confidence: float = CONFIDENCE,
) -> dict:
    """Mean of `differences` with a percentile bootstrap interval, resampling whole `groups`
    (patients) with replacement; seeded, so the same input gives the same interval."""
    diffs = np.asarray(differences, float)
    if diffs.size == 0:
        return {"n": 0, "mean": None, "low": None, "high": None}
    _, group_index = np.unique(np.asarray(groups, dtype=object).astype(str), return_inverse=True)
    n_groups = int(group_index.max()) + 1
    sums = np.bincount(group_index, weights=diffs, minlength=n_groups)
    counts = np.bincount(group_index, minlength=n_groups).astype(float)
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, n_groups, size=(samples, n_groups))
    # Each resample's mean over all frames of the drawn patients (a ratio of sums).
    means = sums[picks].sum(axis=1) / counts[picks].sum(axis=1)
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return {
        "n": int(diffs.size),
        "groups": n_groups,
        "mean": float(diffs.mean()),
        "low": float(low),
        "high": float(high),
    }


def decide(dice_interval: dict, hc_interval: dict | None, n_frames: int) -> str:
    """The verdict from the paired intervals (see the module docstring)."""
    if n_frames < MIN_FRAMES or dice_interval["mean"] is None:
        return VERDICT_TOO_FEW
    hc_usable = hc_interval is not None and hc_interval["n"] >= MIN_FRAMES
    if dice_interval["high"] < 0 or (hc_usable and hc_interval["low"] > 0):
        return VERDICT_WORSE
    if dice_interval["low"] > 0 or (hc_usable and hc_interval["high"] < 0):
        return VERDICT_BETTER
    return VERDICT_SAME


def compare_scores(
    candidate: Sequence[FrameScores],
    current: Sequence[FrameScores],
    samples: int = BOOTSTRAP_SAMPLES,
    seed: int = 0,
) -> dict:
    """The comparison report of two models' scores of the same frames (matched by file)."""
    by_file = {f.file: f for f in current}
    pairs = [(c, by_file[c.file]) for c in candidate if c.file in by_file]
    scored = [(c, u) for c, u in pairs if c.dice is not None and u.dice is not None]
    dice_diff = [c.dice - u.dice for c, u in scored]
    patients = [c.patient for c, _ in scored]
    dice_interval = paired_bootstrap(dice_diff, patients, samples, seed)
    with_hc = [
        (c, u) for c, u in pairs if c.hc_abs_error_mm is not None and u.hc_abs_error_mm is not None
    ]
    hc_interval = None
    if with_hc:
        hc_interval = paired_bootstrap(
            [c.hc_abs_error_mm - u.hc_abs_error_mm for c, u in with_hc],
            [c.patient for c, _ in with_hc],
            samples,
            seed,
        )
    per_frame = [_frame_row(c, u) for c, u in pairs]
    n_patients = len(set(patients))
    return {
        "verdict": decide(dice_interval, hc_interval, len(scored)),
        "rule": VERDICT_RULE,
        "frames": len(pairs),
        "frames_scored": len(scored),
        "resampled": "patients" if n_patients < len(scored) else "frames",
        "bootstrap": {"samples": samples, "seed": seed, "confidence": CONFIDENCE},
        "candidate": summarise_model([c for c, _ in pairs]),
        "current": summarise_model([u for _, u in pairs]),
        "difference": {"dice": dice_interval, "hc_abs_error_mm": hc_interval},
        "frames_worse": [
            row["file"]
            for row in per_frame
            if row["dice_difference"] is not None and row["dice_difference"] < -FLAG_DICE_DROP
        ],
        "per_frame": per_frame,
    }


def _frame_row(candidate: FrameScores, current: FrameScores) -> dict:
    def diff(a: float | None, b: float | None) -> float | None:
        return None if a is None or b is None else a - b

    return {
        "file": candidate.file,
        "patient": candidate.patient,
        "dice_candidate": candidate.dice,
        "dice_current": current.dice,
        "dice_difference": diff(candidate.dice, current.dice),
        "hc_error_candidate_mm": candidate.hc_diff_mm,
        "hc_error_current_mm": current.hc_diff_mm,
        "hc_abs_error_difference_mm": diff(candidate.hc_abs_error_mm, current.hc_abs_error_mm),
    }


def scores_from_result(result) -> FrameScores:
    """`FrameScores` from an `evaluate` per-frame result (`core.commands.evaluate.FrameResult`)."""
    return FrameScores(
        file=result.file,
        patient=result.patient,
        dice=result.dice,
        hd95_mm=result.hd95_mm,
        hc_pred_mm=result.hc_pred_mm,
        hc_ref_mm=result.hc_ref_mm,
    )


def score_models(
    models: dict[str, Path],
    folder: Path,
    pixel_csv: Path | None = None,
    pixel_mm: float | None = None,
    mask_label: int | None = None,
    device: str = "auto",
    progress: Callable[[str], None] | None = None,
    only: Collection[str] | None = None,
) -> tuple[dict[str, list[FrameScores]], list[dict]]:
    """({role: per-frame scores}, import problems): each ONNX model of `models` scores the
    labelled frames of `folder` (`only`: those image names; None: all) in the same order.

    Raises ValueError when the folder has no usable labelled frame among those wanted.
    """
    from .commands.evaluate import evaluate_pair
    from .dataset import import_labelled_folder
    from .inference import SegmentationEngine

    say = progress or (lambda _message: None)
    imported = import_labelled_folder(folder, pixel_csv, pixel_mm, False, mask_label=mask_label)
    for line in imported.report_lines():
        say(line)
    wanted = None if only is None else set(only)
    pairs = [p for p in imported.pairs if wanted is None or p.image_path.name in wanted]
    if not pairs:
        raise ValueError(f"{Path(folder).name}: no usable labelled frame to compare on")
    scores: dict[str, list[FrameScores]] = {}
    for role, path in models.items():
        engine = SegmentationEngine(Path(path), device=device)
        say(f"scoring {len(pairs)} frames with the {role} model {Path(path).name}")
        scores[role] = [scores_from_result(evaluate_pair(p, engine)) for p in pairs]
    problems = [{"file": p.path.name, "problem": p.problem} for p in imported.problems]
    return scores, problems


def compare_models(
    candidate: Path,
    current: Path,
    folder: Path,
    pixel_csv: Path | None = None,
    pixel_mm: float | None = None,
    mask_label: int | None = None,
    device: str = "auto",
    progress: Callable[[str], None] | None = None,
    samples: int = BOOTSTRAP_SAMPLES,
    seed: int = 0,
    only: Collection[str] | None = None,
) -> dict:
    """Score both ONNX models on the labelled `folder` and compare them (`compare_scores`).

    `only`: the image file names to judge on (e.g. a run's held-out frames); None: all.
    The report also names the models and lists the frames that could not be imported.
    Raises ValueError when the folder has no usable labelled frame.
    """
    scores, problems = score_models(
        {"candidate": candidate, "current": current},
        folder,
        pixel_csv,
        pixel_mm,
        mask_label,
        device,
        progress,
        only,
    )
    report = compare_scores(scores["candidate"], scores["current"], samples, seed)
    report["candidate_model"], report["current_model"] = str(candidate), str(current)
    report["import_problems"] = problems
    return report
