"""Modeling fixtures: a tiny model with sharp (varied, decisive) logits, and a 4-bit-sized one."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def tiny64_dir(tmp_path_factory):
    """Hidden size 64: a multiple of bitsandbytes' 4-bit blocksize, so nf4 loads it."""
    from tiny import save_tiny_model

    return save_tiny_model(tmp_path_factory.mktemp("tiny64") / "tiny64", hidden=64)


@pytest.fixture(scope="session")
def sharp(tiny_model_dir):
    """The tiny model with weights redrawn at std 1.

    At its default init the tiny model repeats one token forever; with larger
    weights it writes varied sequences whose top-2 logit gaps are far above
    float noise, so token-for-token comparisons mean something.
    """
    import torch

    from tuilab.modeling.loading import load_model

    loaded = load_model(tiny_model_dir)
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in loaded.model.parameters():
            if p.dim() == 2:
                p.copy_(torch.randn(p.shape, generator=gen))
    return loaded
