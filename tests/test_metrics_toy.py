import math

import pytest
import scipy.stats
import torch

from src.data.toy import toy_mode_centers, toy_mode_std
from src.metrics import exact_w1, mode_coverage, sliced_wasserstein


def sample_25gaussians(n_per_mode: int, generator: torch.Generator, modes=None) -> torch.Tensor:
    """The paper's 25gaussians (gan_toy.py): 2*(x, y) + N(0, 0.05^2), x, y in -2..2, all divided by 2.828."""
    pts = []
    for x in range(-2, 3):
        for y in range(-2, 3):
            k = (x + 2) * 5 + (y + 2)
            if modes is not None and k not in modes:
                continue
            noise = torch.randn(n_per_mode, 2, generator=generator, dtype=torch.float64) * 0.05
            pts.append(noise + torch.tensor([2.0 * x, 2.0 * y], dtype=torch.float64))
    return (torch.cat(pts) / 2.828).float()


def test_toy_centers_match_paper():
    c8 = toy_mode_centers("8gaussians")
    assert c8.shape == (8, 2)
    r = 2 / math.sqrt(2) / 1.414
    assert torch.allclose(c8[0], torch.tensor([2 / 1.414, 0.0]))
    assert torch.allclose(c8[4], torch.tensor([r, r]))
    assert torch.allclose(c8.norm(dim=1), torch.full((8,), 2 / 1.414))
    c25 = toy_mode_centers("25gaussians")
    assert c25.shape == (25, 2)
    assert torch.allclose(c25[0], torch.tensor([-4 / 2.828, -4 / 2.828]))
    assert toy_mode_std("8gaussians") == pytest.approx(0.02 / 1.414)
    assert toy_mode_std("25gaussians") == pytest.approx(0.05 / 2.828)
    with pytest.raises(ValueError):
        toy_mode_centers("swissroll")


def test_exact_w1_shift_and_permutation():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(200, 2, generator=g)
    v = torch.tensor([0.3, -0.4])
    assert exact_w1(x, x + v) == pytest.approx(0.5, abs=1e-5)
    assert exact_w1(x, x[torch.randperm(200, generator=g)]) == pytest.approx(0.0, abs=1e-7)


def test_exact_w1_hand_computed():
    # Two plans: (0,0)->(0,1), (3,0)->(3,4) costs 1 + 4; the other costs 5 + sqrt(10). W1 = 5 / 2.
    x = torch.tensor([[0.0, 0.0], [3.0, 0.0]])
    y = torch.tensor([[3.0, 4.0], [0.0, 1.0]])
    assert exact_w1(x, y) == pytest.approx((1.0 + 4.0) / 2)
    # 1-D: every point moves by 1.
    x = torch.tensor([[0.0], [1.0], [2.0]])
    y = torch.tensor([[1.0], [2.0], [3.0]])
    assert exact_w1(x, y) == pytest.approx(1.0)


def test_exact_w1_errors():
    with pytest.raises(ValueError, match="equal-size"):
        exact_w1(torch.zeros(3, 2), torch.zeros(4, 2))
    with pytest.raises(ValueError, match="2-D"):
        exact_w1(torch.zeros(3), torch.zeros(3))


def test_w1_one_dimensional_matches_scipy_and_sliced():
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(300, 1, generator=g), torch.rand(300, 1, generator=g) * 3
    w = exact_w1(x, y)
    assert w == pytest.approx(scipy.stats.wasserstein_distance(x[:, 0].numpy(), y[:, 0].numpy()), rel=1e-6)
    assert sliced_wasserstein(x, y) == w
    # The 2-D Hungarian path agrees with the 1-D sorted path on points on a line.
    pad = torch.zeros(300, 1)
    assert exact_w1(torch.cat([x, pad], 1), torch.cat([y, pad], 1)) == pytest.approx(w, rel=1e-6)


@pytest.mark.parametrize("seed", range(5))
def test_sliced_is_lower_bound_2d(seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(100, 2, generator=g)
    y = torch.randn(100, 2, generator=g) * torch.rand(2, generator=g) * 2 + torch.randn(2, generator=g)
    sw = sliced_wasserstein(x, y, num_projections=64, generator=g)
    assert 0 < sw <= exact_w1(x, y) + 1e-9


def test_sliced_reproducible_with_generator():
    x, y = torch.randn(50, 3), torch.randn(50, 3)
    a = sliced_wasserstein(x, y, p=2, generator=torch.Generator().manual_seed(3))
    b = sliced_wasserstein(x, y, p=2, generator=torch.Generator().manual_seed(3))
    assert a == b


def test_mode_coverage_25gaussians():
    g = torch.Generator().manual_seed(0)
    centers, std = toy_mode_centers("25gaussians"), toy_mode_std("25gaussians")
    full = mode_coverage(sample_25gaussians(40, g), centers, std)
    assert full["modes_covered"] == 25
    assert full["high_quality_fraction"] > 0.95
    assert len(full["counts"]) == 25
    three = mode_coverage(sample_25gaussians(100, g, modes={0, 12, 24}), centers, std)
    assert three["modes_covered"] == 3
    assert [k for k, c in enumerate(three["counts"]) if c > 0] == [0, 12, 24]
    noise = (torch.rand(1000, 2, generator=g) * 4 - 2) / 1.414  # uniform over a box around the data
    res = mode_coverage(noise, centers, std)
    assert res["modes_covered"] <= 2
    assert res["high_quality_fraction"] < 0.1


def test_mode_coverage_threshold_scales_with_the_sample_count():
    from src.data.toy import sample_toy

    centers, std = toy_mode_centers("25gaussians"), toy_mode_std("25gaussians")
    # A perfect generator with 500 points puts about 20 in each mode: the fixed 20 of 2,500 missed about half of
    # them; 0.8% of 500 (4 points) counts all 25 in every run.
    for seed in range(20):
        perfect = sample_toy("25gaussians", 500, torch.Generator().manual_seed(seed))
        cover = mode_coverage(perfect, centers, std)
        assert cover["min_count"] == pytest.approx(4.0)
        assert cover["modes_covered"] == 25, seed
    assert mode_coverage(perfect, centers, std, min_count=20)["modes_covered"] < 25  # the old fixed rule
    many = sample_toy("25gaussians", 2500, torch.Generator().manual_seed(0))
    assert mode_coverage(many, centers, std)["min_count"] == pytest.approx(20.0)  # PacGAN's own setting
