"""The scalar reward head: its initial scale, fp32 arithmetic and the file beside the adapter."""

from __future__ import annotations

import math

import pytest
import torch

from tuilab.modeling.heads import HEAD_FILE, ScalarHead


def test_initial_rewards_have_unit_scale_whatever_the_width():
    for width in (32, 2048):
        head = ScalarHead(width, generator=torch.Generator().manual_seed(0))
        assert head.linear.bias.item() == 0.0
        assert head.linear.weight.std().item() == pytest.approx(1 / math.sqrt(width + 1), rel=0.3)
        # Hidden states of unit variance give rewards of about unit variance.
        hidden = torch.randn(4000, width, generator=torch.Generator().manual_seed(1))
        assert head(hidden).std().item() == pytest.approx(1.0, abs=0.35)


def test_the_same_generator_seed_gives_the_same_head():
    a = ScalarHead(16, generator=torch.Generator().manual_seed(5))
    b = ScalarHead(16, generator=torch.Generator().manual_seed(5))
    c = ScalarHead(16, generator=torch.Generator().manual_seed(6))
    assert torch.equal(a.linear.weight, b.linear.weight)
    assert not torch.equal(a.linear.weight, c.linear.weight)


def test_one_reward_per_position_in_fp32_whatever_the_hidden_dtype():
    head = ScalarHead(8, generator=torch.Generator().manual_seed(0))
    hidden = torch.randn(3, 5, 8, generator=torch.Generator().manual_seed(2)).to(torch.bfloat16)
    out = head(hidden)
    assert out.shape == (3, 5) and out.dtype == torch.float32
    want = hidden.float() @ head.linear.weight[0] + head.linear.bias[0]
    assert torch.allclose(out, want, atol=1e-6)


def test_save_then_load_scores_the_same(tmp_path):
    head = ScalarHead(12, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        head.linear.bias.fill_(0.25)
    path = head.save(tmp_path / "run" / "reward-0")
    assert path == tmp_path / "run" / "reward-0" / HEAD_FILE and path.is_file()
    loaded = ScalarHead.load(tmp_path / "run" / "reward-0", device="cpu")
    assert loaded.hidden_size == 12 and not loaded.training
    hidden = torch.randn(4, 12, generator=torch.Generator().manual_seed(4))
    assert torch.equal(loaded(hidden), head(hidden))


def test_loading_from_a_folder_without_a_head_names_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"head\.safetensors: no reward head here"):
        ScalarHead.load(tmp_path)
