import numpy as np
import pytest

LEVELS = (0.025, 0.1, 0.5, 0.9, 0.95, 0.975, 0.99)


@pytest.fixture
def gaussian_fleet():
    """300 series of i.i.d. N(mu_s, sigma_s) noise: known quantiles mu + z*sigma."""
    rng = np.random.default_rng(7)
    mu = rng.uniform(0.2, 0.6, size=(300, 1))
    sd = rng.uniform(0.02, 0.08, size=(300, 1))
    return mu + sd * rng.standard_normal((300, 400)), mu[:, 0], sd[:, 0]
