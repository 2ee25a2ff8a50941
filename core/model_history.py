"""Which model measures, where it came from, and the way back to the one before.

The history is one JSON file (written atomically): a list of promotions, oldest first. Each
entry names the model, its parent (the model in use when it was promoted), the data it was
trained on, the comparison that judged it on the clinic's held-out frames (verdict and the
figures that carry it; the full report stays beside the model), when it was promoted and, when
the comparison alone would have refused it, the reason typed for the override.

A promotion is refused (`promotion_refusal`) when the comparison found the model worse, judged
it on too few frames, or did not run, unless a reason is given.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .comparison import VERDICT_TOO_FEW, VERDICT_WORSE

HISTORY_FILE = "model_history.json"
HISTORY_VERSION = 1
REASON_PREVIOUS = "back to the previous model"


class ModelHistoryError(ValueError):
    """The history file cannot be read; str() names the file. It is never overwritten then."""


@dataclass(frozen=True)
class Promotion:
    """One model put to use."""

    model: str
    parent: str | None
    promoted_at: str  # ISO 8601, UTC
    data: dict[str, Any] = field(default_factory=dict)
    comparison: dict[str, Any] | None = None
    reason: str | None = None

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Promotion:
        return cls(
            model=str(raw["model"]),
            parent=None if raw.get("parent") is None else str(raw["parent"]),
            promoted_at=str(raw["promoted_at"]),
            data=dict(raw.get("data") or {}),
            comparison=raw.get("comparison"),
            reason=raw.get("reason"),
        )


def promotion_refusal(comparison: dict | None, reason: str = "") -> str | None:
    """Why the comparison does not allow the model to be used, or None.

    A typed `reason` (not blank) overrides the refusal; the history keeps it.
    """
    if reason.strip():
        return None
    if comparison is None:
        return "The model was not compared with the model in use: give a reason to use it."
    verdict = comparison.get("verdict")
    if verdict == VERDICT_WORSE:
        return (
            "The model is worse than the model in use on the clinic's held-out frames: "
            "give a reason to use it anyway."
        )
    if verdict == VERDICT_TOO_FEW:
        return (
            f"The model was judged on too few frames ({comparison.get('frames_scored', 0)}) "
            "for the verdict to mean anything: give a reason to use it anyway."
        )
    return None


def comparison_digest(report: dict) -> dict:
    """What the history keeps of a comparison report: the verdict and its figures."""
    keep = ("verdict", "frames", "frames_scored", "resampled", "frames_worse")
    digest = {key: report.get(key) for key in keep}
    digest["difference"] = report.get("difference")
    for role in ("candidate", "current"):
        model = report.get(role) or {}
        digest[f"{role}_dice"] = (model.get("dice") or {}).get("mean")
    return digest


class ModelHistory:
    """The promotions recorded in `path` (see the module docstring)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def entries(self) -> list[Promotion]:
        """All promotions, oldest first; [] when there is no file. ModelHistoryError if unusable."""
        if not self.path.is_file():
            return []
        try:
            content = json.loads(self.path.read_text(encoding="utf-8"))
            return [Promotion.from_dict(raw) for raw in content["promotions"]]
        except (OSError, UnicodeDecodeError) as error:
            raise ModelHistoryError(f"{self.path}: cannot be read ({error})") from None
        except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as error:
            raise ModelHistoryError(f"{self.path}: not a model history ({error})") from None

    def current(self) -> Promotion | None:
        entries = self.entries()
        return entries[-1] if entries else None

    def previous_model(self) -> Path | None:
        """The model used before the current one (None when there was none): its parent."""
        current = self.current()
        if current is None or current.parent is None:
            return None
        return Path(current.parent)

    def promote(
        self,
        model: str | Path,
        parent: str | Path | None,
        data: dict[str, Any] | None = None,
        comparison: dict | None = None,
        reason: str | None = None,
        now: float | None = None,
    ) -> Promotion:
        """Record `model` as the one in use (the file is rewritten atomically)."""
        from .atomic import atomic_write

        entries = self.entries()  # raises on an unreadable file: never replace it
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))
        entry = Promotion(
            model=str(model),
            parent=None if parent is None else str(parent),
            promoted_at=stamp,
            data=dict(data or {}),
            comparison=comparison,
            reason=(reason or "").strip() or None,
        )
        content = {
            "version": HISTORY_VERSION,
            "promotions": [asdict(e) for e in [*entries, entry]],
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(self.path, "w", encoding="utf-8") as handle:
            json.dump(content, handle, indent=2)
        return entry

    def back_to_previous(self, now: float | None = None) -> Promotion | None:
        """Put the previous model back in use (recorded as a promotion); None if there is none."""
        current, previous = self.current(), self.previous_model()
        if current is None or previous is None:
            return None
        earlier = [e for e in self.entries() if e.model == str(previous)]
        return self.promote(
            previous,
            current.model,
            data=earlier[-1].data if earlier else {},
            comparison=earlier[-1].comparison if earlier else None,
            reason=REASON_PREVIOUS,
            now=now,
        )
