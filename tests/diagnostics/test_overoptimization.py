import math

import numpy as np
import pytest

from tuilab.diagnostics.overoptimization import fit_gao


def test_fit_recovers_known_curve():
    alpha, beta = 1.0, 0.5
    kl = np.linspace(0.0, 30.0, 40)
    d = np.sqrt(kl)
    gold = 0.2 + np.where(d > 0, d * (alpha - beta * np.log(np.where(d > 0, d, 1))), 0)
    fit = fit_gao(kl, gold)
    assert fit.alpha == pytest.approx(alpha, rel=1e-6)
    assert fit.beta == pytest.approx(beta, rel=1e-6)
    assert fit.baseline == pytest.approx(0.2)
    assert fit.r2 == pytest.approx(1.0)
    # peak at d* = exp(α/β − 1) = e → KL = e²
    assert fit.peak_kl == pytest.approx(math.e**2, rel=1e-6)
    assert fit.peak_gold == pytest.approx(0.2 + beta * math.e, rel=1e-6)
    assert fit.predict([0.0])[0] == pytest.approx(0.2)


def test_fit_needs_points():
    assert fit_gao([0.0, 1.0], [0.0, 1.0]) is None
    assert fit_gao([0.0, 0.0, 0.0], [0.0, 1.0, 2.0]) is None
    with pytest.raises(ValueError):
        fit_gao([1, 2, 3], [1, 2])


def test_no_turn_means_no_peak():
    kl = np.linspace(0.1, 10, 20)
    fit = fit_gao(kl, np.sqrt(kl) * 2.0 + 0.0, baseline=0.0)
    assert fit.beta == pytest.approx(0.0, abs=1e-9)
    assert fit.peak_kl is None


def test_diagnostics_never_import_torch():
    import subprocess
    import sys

    code = (
        "import sys, tuilab.diagnostics.monitor, tuilab.diagnostics.overoptimization; "
        "assert 'torch' not in sys.modules, 'diagnostics imported torch'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
