"""ERSR's tensor operations on synthetic ellipses: filter, refinement, reflection, perturbation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hc_studio.core.ellipse import Ellipse
from hc_studio.core.training.methods.ersr import filtering, losses, refinement, symmetry

HEIGHT, WIDTH = 80, 112


def ellipse_map(ellipse: Ellipse, shape: tuple[int, int] = (HEIGHT, WIDTH)) -> torch.Tensor:
    """(1, 1, H, W) float {0, 1}: pixel centres inside `ellipse`."""
    cols, rows = refinement.pixel_grid(*shape, "cpu")
    return (ellipse.normalised_radius_sq(cols, rows) <= 1).float()[None, None]


def iou(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a > 0.5, b > 0.5
    return float((a & b).sum() / (a | b).sum())


HEAD = Ellipse.normalised(56.3, 40.2, 34.0, 26.0, 0.6)


def ragged(prob: torch.Tensor, seed: int) -> torch.Tensor:
    """A noisy, ragged version of a map: holes, a jagged border and speckles outside."""
    generator = torch.Generator().manual_seed(seed)
    holes = torch.rand(prob.shape, generator=generator) > 0.2
    speckle = torch.rand(prob.shape, generator=generator) > 0.97
    return ((prob * holes) + speckle).clamp(0, 1)


# --- supervised loss ---------------------------------------------------------------------------


def test_focal_loss_with_gamma_zero_is_bce() -> None:
    logits = torch.randn(2, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    target = (logits > 0.3).float()
    bce = F.binary_cross_entropy_with_logits(logits, target)
    assert torch.isclose(losses.focal_loss(logits, target, gamma=0.0), bce)
    assert losses.focal_loss(logits, target) < bce  # gamma 2 down-weights the easy pixels


def test_supervised_loss_is_small_for_a_confident_right_answer() -> None:
    target = ellipse_map(HEAD)
    right = losses.ersr_supervised_loss((target * 2 - 1) * 20, target)
    wrong = losses.ersr_supervised_loss((1 - 2 * target) * 20, target)
    assert right < 1e-3 < 1.0 < wrong


# --- 1. dual-scoring filter --------------------------------------------------------------------


def test_both_scores_prefer_the_regular_ellipse_over_a_ragged_one() -> None:
    maps = torch.cat([ragged(ellipse_map(HEAD), seed=1), ellipse_map(HEAD)])
    boundary, regularity = filtering.boundary_scores(maps), filtering.regularity_scores(maps)
    assert boundary[1] < boundary[0] and regularity[1] < regularity[0]


def test_signed_distances_are_negative_inside_positive_outside_and_zero_without_a_border() -> None:
    masks = torch.zeros(3, 1, 21, 21)
    masks[0, :, 5:16, 5:16] = 1
    masks[2] = 1  # all foreground: no border either
    distances = losses.signed_distances(masks)
    assert float(distances[0, 0, 10, 10]) == pytest.approx(-6.0, abs=1e-3)
    assert float(distances[0, 0, 10, 2]) == pytest.approx(3.0, abs=1e-3)
    assert torch.all(distances[1:] == 0)


def test_distance_loss_is_zero_at_the_target_and_grows_with_how_far_the_border_is_off() -> None:
    target = torch.zeros(1, 1, 40, 40)
    target[..., 10:30, 10:30] = 1

    def cost(grow: int) -> float:
        predicted = torch.zeros_like(target)
        predicted[..., 10 - grow : 30 + grow, 10 - grow : 30 + grow] = 1
        return float(losses.distance_loss((predicted * 2 - 1) * 30, target))

    assert cost(0) == pytest.approx(0.0, abs=1e-6)
    assert 0 < cost(1) < cost(3) < cost(6)
    # Dice-focal + BCE would charge a 6-pixel shift about as much per pixel as a 1-pixel one;
    # this term charges each misplaced pixel its distance, so the cost grows faster than the area.
    assert cost(6) / cost(1) > 1.5 * (26**2 - 20**2) / (22**2 - 20**2)


def test_the_distance_term_is_added_to_the_supervised_loss_with_its_weight() -> None:
    target = ellipse_map(HEAD)
    logits = torch.randn(target.shape, generator=torch.Generator().manual_seed(0))
    plain = losses.ersr_supervised_loss(logits, target)
    weighted = losses.ersr_supervised_loss(logits, target, distance_weight=0.5)
    assert float(weighted) == pytest.approx(
        float(plain + 0.5 * losses.distance_loss(logits, target)), rel=1e-6
    )
    assert float(weighted) > float(plain)


def test_filter_keeps_the_regular_predictions_and_ranks_an_empty_map_last() -> None:
    heads = [Ellipse.normalised(50 + 3 * i, 40, 30 + 2 * i, 22 + i, 0.3 * i) for i in range(4)]
    regular = [ellipse_map(e) * 0.95 for e in heads]
    maps = torch.cat([ragged(regular[0], 1), regular[1], ragged(regular[2], 2), regular[3]])
    maps = torch.cat([maps, torch.zeros(1, 1, HEIGHT, WIDTH)])
    kept = filtering.select_reliable(maps, count=2)
    assert sorted(kept.tolist()) == [1, 3]
    assert filtering.select_reliable(maps, count=5)[-1].item() == 4
    assert math.isinf(float(filtering.quality_scores(maps)[4]))


def test_kept_fraction_grows_from_half_to_all_with_the_ramp() -> None:
    assert filtering.kept_fraction(0.0) == 0.5 and filtering.kept_fraction(1.0) == 1.0
    assert filtering.kept_fraction(0.5) == pytest.approx(0.75)
    assert [filtering.keep_count(8, f) for f in (0.5, 0.6, 0.75, 0.99, 1.0)] == [4, 4, 6, 7, 8]


def test_a_small_batch_keeps_at_least_three_quarters() -> None:
    assert [filtering.keep_count(b, 0.5) for b in (1, 2, 3, 4)] == [1, 2, 3, 2]


def test_distance_transform_is_euclidean() -> None:
    mask = torch.zeros(1, 1, 21, 21)
    mask[..., 5:16, 5:16] = 1
    distances = filtering.distance_transforms(mask > 0.5)
    assert float(distances[0, 0, 10, 10]) == pytest.approx(6.0, abs=1e-3)
    assert float(distances[0, 0, 0, 0]) == 0.0


# --- 2. ellipse-constrained refinement ---------------------------------------------------------


def test_fitted_ellipse_matches_the_drawn_one() -> None:
    fitted = refinement.fit_head_ellipse(ellipse_map(HEAD)[0, 0].numpy().astype(np.float64))
    assert fitted is not None
    assert (fitted.cx, fitted.cy) == pytest.approx((HEAD.cx, HEAD.cy), abs=0.3)
    assert (fitted.a, fitted.b) == pytest.approx((HEAD.a, HEAD.b), abs=0.8)
    assert fitted.angle == pytest.approx(HEAD.angle, abs=0.03)


def test_refinement_fills_a_hole_and_suppresses_a_distant_blob() -> None:
    prob = ellipse_map(HEAD) * 0.9
    prob[..., 36:45, 52:61] = 0.2  # a hole in the middle of the head
    far = Ellipse.normalised(8, 8, 5, 5, 0.0)  # a bright blob in the corner, far outside
    prob = torch.maximum(prob, ellipse_map(far) * 0.95)
    result = refinement.refine_pseudo_labels(prob)
    label = result.pseudo_label[0, 0]
    assert label[36:45, 52:61].all(), "the hole is not filled"
    assert not label[4:13, 4:13].any(), "the distant blob survived"
    assert iou(result.pseudo_label, ellipse_map(HEAD)) > 0.97
    assert result.ellipses[0] is not None


def test_without_the_ellipse_switch_the_pseudo_label_is_the_thresholded_map() -> None:
    prob = ellipse_map(HEAD) * 0.9
    prob[..., 36:45, 52:61] = 0.2
    result = refinement.refine_pseudo_labels(prob, use_ellipse=False)
    assert torch.equal(result.pseudo_label, (prob > 0.6).float())
    assert result.ellipses[0] is not None  # still fitted: the symmetry step needs the axis


def test_a_map_without_a_fittable_ellipse_is_only_thresholded() -> None:
    prob = torch.full((2, 1, HEIGHT, WIDTH), 0.3)
    prob[1, 0, 10, 10:13] = 0.9  # three pixels: too few contour points for an ellipse
    result = refinement.refine_pseudo_labels(prob)
    assert result.ellipses == [None, None]
    assert torch.equal(result.pseudo_label, (prob > 0.6).float())


# --- 3. reflection, composites, perturbation ---------------------------------------------------


def test_reflecting_a_symmetric_ellipse_about_its_axis_maps_it_onto_itself() -> None:
    head = ellipse_map(HEAD)
    axes = symmetry.axis_parameters([HEAD])
    assert iou(symmetry.reflect(head, axes), head) > 0.95


def test_reflection_is_an_involution() -> None:
    generator = torch.Generator().manual_seed(3)
    smooth = F.avg_pool2d(torch.rand(1, 1, HEIGHT, WIDTH, generator=generator), 5, 1, 2)
    axes = symmetry.axis_parameters([HEAD])
    twice = symmetry.reflect(symmetry.reflect(smooth, axes), axes)
    interior = ellipse_map(Ellipse.normalised(HEAD.cx, HEAD.cy, 30, 30, 0.0)) > 0.5
    assert (twice - smooth)[interior].abs().max() < 0.05
    reflected_twice = symmetry.reflect(symmetry.reflect(ellipse_map(HEAD), axes), axes)
    assert iou(reflected_twice, ellipse_map(HEAD)) > 0.95


def test_reflection_is_about_the_major_axis() -> None:
    """A dot beside the major axis lands on the other side of it, at the same distance along."""
    major = np.array([math.cos(HEAD.angle), math.sin(HEAD.angle)])
    minor = np.array([-major[1], major[0]])
    centre = np.array([HEAD.cx, HEAD.cy])
    source, expected = centre + 15 * major + 8 * minor, centre + 15 * major - 8 * minor
    dot = torch.zeros(1, 1, HEIGHT, WIDTH)
    col, row = np.round(source).astype(int)
    dot[0, 0, row - 1 : row + 2, col - 1 : col + 2] = 1
    reflected = symmetry.reflect(dot, symmetry.axis_parameters([HEAD]))[0, 0]
    rows, cols = torch.meshgrid(torch.arange(HEIGHT), torch.arange(WIDTH), indexing="ij")
    weight = float(reflected.sum())
    centroid = np.array([float((cols * reflected).sum()), float((rows * reflected).sum())]) / weight
    assert np.linalg.norm(centroid - (expected + np.round(source) - source)) < 0.5


def test_reflection_passes_gradients_to_its_input() -> None:
    maps = torch.rand(2, 1, HEIGHT, WIDTH, requires_grad=True)
    symmetry.reflect(maps, symmetry.axis_parameters([HEAD, HEAD])).sum().backward()
    assert maps.grad is not None and maps.grad.abs().sum() > 0


@pytest.mark.parametrize("angle", [0.0, math.pi / 2, 0.6])
def test_composites_are_symmetric_about_the_axis(angle: float) -> None:
    head = Ellipse.normalised(56.0, 40.0, 34.0, 26.0, angle)  # centred on a pixel centre
    axes = symmetry.axis_parameters([head])
    noise = torch.rand(1, 1, HEIGHT, WIDTH, generator=torch.Generator().manual_seed(4))
    image = F.avg_pool2d(noise, 7, 1, 3)  # smooth, so that off-grid interpolation is accurate
    composites = symmetry.mirrored_composites(image, axes)
    assert composites.shape == (2, 1, HEIGHT, WIDTH)
    mirrored = symmetry.reflect(composites, torch.cat([axes, axes]))
    interior = ellipse_map(head).expand(2, 1, HEIGHT, WIDTH) > 0.5
    asymmetry = (mirrored - composites)[interior].abs()
    if angle in (0.0, math.pi / 2):  # the reflection maps pixel centres onto pixel centres
        assert asymmetry.max() < 1e-5
    else:  # off the pixel grid bilinear interpolation blurs: compare with the original image
        original = (symmetry.reflect(image, axes) - image)[interior[:1]].abs()
        assert asymmetry.mean() < 0.2 * original.mean()
    # Each composite keeps its own side of the original image unchanged.
    side_one, side_two = symmetry.axis_sides(axes, HEIGHT, WIDTH)
    assert torch.equal(composites[0][side_one[0] > 0], image[0][side_one[0] > 0])
    assert torch.equal(composites[1][side_two[0] > 0], image[0][side_two[0] > 0])


def test_mirror_loss_is_zero_for_a_symmetric_map_and_not_for_a_lopsided_one() -> None:
    head = Ellipse.normalised(56.0, 40.0, 34.0, 26.0, 0.0)
    axes = symmetry.axis_parameters([head])
    symmetric = ellipse_map(head)
    lopsided = symmetric.clone()
    lopsided[..., :40, :] *= 0.3
    assert float(symmetry.mirror_loss(symmetric, axes)) < 1e-8
    assert float(symmetry.mirror_loss(lopsided, axes)) > 1e-3


def test_perturbation_only_changes_pixels_inside_the_mask() -> None:
    torch.manual_seed(5)
    images = torch.rand(3, 1, HEIGHT, WIDTH) * 0.8 + 0.1
    mask = ellipse_map(HEAD).expand(3, 1, HEIGHT, WIDTH)
    always = symmetry.PerturbConfig(prob=1.0)
    out = symmetry.perturb_inside(images, mask, always)
    outside = mask < 0.5
    assert torch.equal(out[outside], images[outside])
    assert (out - images)[~outside].abs().mean() > 0.01
    never = symmetry.PerturbConfig(prob=0.0)
    assert torch.equal(symmetry.perturb_inside(images, mask, never), images)


def test_each_perturbation_fires_with_its_probability() -> None:
    torch.manual_seed(6)
    images = torch.rand(400, 1, 8, 8) * 0.8 + 0.1
    out = symmetry.perturb_inside(images, torch.ones_like(images), symmetry.PerturbConfig(prob=0.2))
    changed = (out != images).flatten(1).any(dim=1).float().mean()
    assert float(changed) == pytest.approx(1 - 0.8**4, abs=0.07)


def test_halves_are_perturbed_independently_inside_the_head() -> None:
    torch.manual_seed(7)
    head = Ellipse.normalised(56.0, 40.0, 34.0, 26.0, 0.0)
    axes2 = symmetry.axis_parameters([head] * 2)
    composites = symmetry.mirrored_composites(torch.full((1, 1, HEIGHT, WIDTH), 0.5), axes2[:1])
    mask = symmetry.mirrored_composites(ellipse_map(head), axes2[:1])
    config = symmetry.PerturbConfig(
        prob=1.0, gamma=(1.0, 1.0), blur_sigma=(0.5, 0.5), noise_std=0.0
    )
    out = symmetry.perturb_halves(composites, mask, axes2, config)
    upper, lower = out[0, 0, 30, 56], out[0, 0, 50, 56]  # same column, either side of the axis
    assert float(upper) != pytest.approx(float(lower))  # each half drew its own shift
    assert torch.equal(out[mask < 0.5], composites[mask < 0.5])
