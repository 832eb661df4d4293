"""`tuilab …` with PPO's sampler drawing each answer from a stream of its own (prompt, step, call).

Run as `python tests/training/ppo_sampling_harness.py ARGS…` or under
`torchrun … tests/training/ppo_sampling_harness.py ARGS…`: the same command
line as `python -m tuilab ARGS…`, except that every prompt's answer is sampled
from a generator seeded by (prompt tokens, step, n-th call for it this step)
instead of the rank's batch stream. One process and two then draw the very
same answers for the same global batch, so everything downstream (rewards,
whitening, the update, the metrics) can be compared between them. Everything
else is the real command: CLI, job runner, database, DDP.
"""

from __future__ import annotations

import hashlib
import os
import sys

import torch

from tuilab.training import ppo

_original_generate = ppo._generate
_original_batch_indices = ppo.batch_indices
_state = {"step": 0, "calls": {}}


def _batch_indices(n_prompts, batch_size, step, seed):
    if step != _state["step"]:
        _state["step"], _state["calls"] = step, {}
    return _original_batch_indices(n_prompts, batch_size, step, seed)


def _row_seed(ids) -> int:
    key = tuple(int(t) for t in ids)
    n = _state["calls"].get(key, 0)
    _state["calls"][key] = n + 1
    digest = hashlib.sha256(repr((key, _state["step"], n)).encode()).hexdigest()
    return int(digest[:12], 16)


def _generate(model, tokenizer, id_lists, cfg, generator, reference=None):
    """One row at a time from its own stream (its reference answer from another), then padded into one
    batch as the real sampler pads."""
    rows, refs = [], []
    for ids in id_lists:
        seed = _row_seed(ids)
        g = torch.Generator(device=generator.device).manual_seed(seed)
        r = torch.Generator(device=generator.device).manual_seed(seed + 1) if reference is not None else None
        ro, ref = _original_generate(model, tokenizer, [ids], cfg, g, reference=r)
        rows.append(ro)
        refs.extend(ref or [])
    q = max(r.q_len for r in rows)
    width = max(r.response_ids.shape[1] for r in rows)
    pad = tokenizer.pad_token_id

    ids, am, resp, mask = [], [], [], []
    for r in rows:
        lq, lr = q - r.q_len, width - r.response_ids.shape[1]
        query, query_mask = r.input_ids[:, : r.q_len], r.attention_mask[:, : r.q_len]
        response, response_mask = r.response_ids, r.attention_mask[:, r.q_len :]
        query = torch.nn.functional.pad(query, (lq, 0), value=pad)
        query_mask = torch.nn.functional.pad(query_mask, (lq, 0), value=0)
        response = torch.nn.functional.pad(response, (0, lr), value=pad)
        response_mask = torch.nn.functional.pad(response_mask, (0, lr), value=0)
        ids.append(torch.cat([query, response], 1))
        am.append(torch.cat([query_mask, response_mask], 1))
        resp.append(response)
        mask.append(torch.nn.functional.pad(r.mask, (0, lr), value=0.0))
    am_t, mask_t = torch.cat(am), torch.cat(mask)
    # The sampler's hidden-state capture saw one call per row: it cannot line up with these lengths, so
    # the loop recomputes the old log-probs with a forward pass.
    lengths = [int(n) for n in mask_t.sum(1).tolist()]
    ro = ppo.Rollout(torch.cat(ids), am_t, ppo._positions(am_t), q, torch.cat(resp), mask_t,
                     torch.cat([r.finished for r in rows]), [t for r in rows for t in r.tokens],
                     [t for r in rows for t in r.texts], lengths)
    return ro, (refs if reference is not None else None)


ppo._generate = _generate
ppo.batch_indices = _batch_indices

if __name__ == "__main__":
    torch.set_num_threads(1)
    from tuilab.cli import main

    if os.environ.get("RANK", "0") not in ("", "0"):
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - as `python -m tuilab` does
    sys.exit(main(sys.argv[1:]))
