"""ERSR (Zhou et al., IEEE JBHI 2025, arXiv 2508.19815): the method and its three steps.

`method` holds the `ERSR` method over the shared trainer; `filtering` (dual-scoring adaptive
filtering), `refinement` (ellipse-constrained pseudo-labels) and `symmetry` (mirrored composites
and the mirror loss) its steps; `losses` its supervised loss.
"""

from .method import ERSR, ERSRConfig

__all__ = ["ERSR", "ERSRConfig"]
