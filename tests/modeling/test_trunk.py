"""Trunk helpers: the shared start of a batch, and hidden states with that start run once."""

from __future__ import annotations

import torch

from tuilab.modeling.trunk import backbone_of, last_token_hidden, pad_right, shared_start


def test_shared_start_keeps_each_sequence_its_last_token():
    head = list(range(10, 30))
    assert shared_start([head + [1, 2], head + [1, 3, 4]]) == 21
    assert shared_start([head, head + [5]]) == 19  # the shorter one keeps its last token in its row
    assert shared_start([[1, 2, 3] + head, [1, 2, 4] + head]) == 0  # 2 tokens in common: not worth a pass
    assert shared_start([[1, 2, 3] + head, [1, 2, 4] + head], minimum=2) == 2
    assert shared_start([head + [1]]) == 0


def test_last_token_hidden_with_the_prefix_run_once_equals_each_row_alone(sharp):
    body = backbone_of(sharp.model)
    gen = torch.Generator().manual_seed(0)
    head = torch.randint(3, 100, (12,), generator=gen).tolist()
    seqs = [head + torch.randint(3, 100, (n,), generator=gen).tolist() for n in (1, 7, 3, 12)]
    ids, lengths = pad_right(seqs, 0, torch.device("cpu"))
    prefix = shared_start(seqs)
    assert prefix == 12
    with torch.no_grad():
        plain = last_token_hidden(body, ids, lengths)
        shared = last_token_hidden(body, ids, lengths, prefix)
        alone = torch.cat([last_token_hidden(body, *pad_right([s], 0, torch.device("cpu"))) for s in seqs])
    assert torch.allclose(plain, alone, atol=1e-4)
    assert torch.allclose(shared, alone, atol=1e-4)
    assert (plain - plain.mean(0)).abs().max() > 1e-2  # the rows differ: a wrong row would show
