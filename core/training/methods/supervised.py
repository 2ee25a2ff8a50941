"""The supervised baseline: labelled frames only."""

from __future__ import annotations

from ..method_api import Batch, Method, StepOutput


class Supervised(Method):
    name = "supervised"
    uses_unlabelled = False

    def training_step(self, batch: Batch, step: int) -> StepOutput:
        return self.warmup_step(batch, step)
