"""Batched generation: same tokens as `model.generate` (greedy), EOS handling, padding invariance, sampling."""

from __future__ import annotations

import pytest
import torch

from tuilab.config import SamplingConfig
from tuilab.modeling.chat import prompt_ids, scored_ids
from tuilab.modeling.generation import GenResult, generate, sample, stop_token_ids

QUESTIONS = [
    "hi",
    "What is the capital of France? Tell me a long story about it, please.",
    "Write a poem",
    "def add(a, b):",
]


def _ids(tok, questions=QUESTIONS):
    return [prompt_ids(tok, [{"role": "user", "content": q}]) for q in questions]


def _hf_greedy(model, tok, ids, max_new, eos):
    enc = tok.pad({"input_ids": ids}, return_tensors="pt")
    out = model.generate(**enc, do_sample=False, max_new_tokens=max_new, eos_token_id=eos,
                         pad_token_id=tok.pad_token_id)
    return out[:, enc["input_ids"].shape[1]:].tolist()


def _rows(batch):
    return [batch.response_ids[i, : n].tolist() for i, n in enumerate(batch.lengths)]


def test_prompts_have_different_lengths(sharp):
    lengths = {len(i) for i in _ids(sharp.tokenizer)}
    assert len(lengths) == len(QUESTIONS)


def test_greedy_matches_model_generate(sharp):
    model, tok = sharp.model, sharp.tokenizer
    ids = _ids(tok)
    ours = sample(model, tok, ids, max_new_tokens=20, temperature=0)
    theirs = _hf_greedy(model, tok, ids, 20, stop_token_ids(tok, model))
    assert _rows(ours) == [row[:20] for row in theirs]
    assert len({tuple(r) for r in _rows(ours)}) == len(ids)  # rows really differ


def test_eos_stops_each_row_where_generate_does(sharp):
    """Pick a stop token that ends rows at different steps; rows drop out of the batch one by one."""
    model, tok = sharp.model, sharp.tokenizer
    ids = _ids(tok)
    free = _rows(sample(model, tok, ids, max_new_tokens=20, temperature=0, eos_token_ids=[]))
    stop = free[0][3]  # row 0 ends at its 4th token (or earlier if the token came before)
    ours = sample(model, tok, ids, max_new_tokens=20, temperature=0, eos_token_ids=[stop])
    expected_lengths = [row.index(stop) + 1 if stop in row else 20 for row in free]
    assert ours.lengths == expected_lengths
    assert len(set(expected_lengths)) > 1, "choose a stop token that ends rows at different steps"
    assert ours.finished == [stop in row for row in free]
    assert _rows(ours) == [row[:n] for row, n in zip(free, expected_lengths, strict=True)]
    theirs = _hf_greedy(model, tok, ids, 20, [stop])
    assert _rows(ours) == [row[:n] for row, n in zip(theirs, expected_lengths, strict=True)]


def test_sample_batch_layout(sharp):
    model, tok = sharp.model, sharp.tokenizer
    ids = _ids(tok)
    free = _rows(sample(model, tok, ids, max_new_tokens=12, temperature=0, eos_token_ids=[]))
    stop = free[1][2]
    out = sample(model, tok, ids, max_new_tokens=12, temperature=0, eos_token_ids=[stop])
    lq = max(len(i) for i in ids)
    assert out.query_ids.shape == out.query_mask.shape == (len(ids), lq)
    assert out.response_ids.shape == out.response_mask.shape == (len(ids), max(out.lengths))
    for i, prompt in enumerate(ids):
        pad = lq - len(prompt)
        assert out.query_ids[i, pad:].tolist() == prompt  # left padding
        assert out.query_mask[i].tolist() == [0] * pad + [1] * len(prompt)
        assert out.query_ids[i, :pad].eq(tok.pad_token_id).all()
        n = out.lengths[i]
        assert out.response_mask[i].tolist() == [1] * n + [0] * (out.response_ids.shape[1] - n)
        assert out.response_ids[i, n:].eq(tok.pad_token_id).all()  # right padding after EOS
        if out.finished[i]:
            assert out.response_ids[i, n - 1].item() == stop
    assert out.finished[1] and out.lengths[1] <= 3


def test_left_padding_invariance(sharp):
    """A prompt alone and the same prompt inside a padded batch continue identically."""
    model, tok = sharp.model, sharp.tokenizer
    ids = _ids(tok)
    together = _rows(sample(model, tok, ids, max_new_tokens=16, temperature=0))
    alone = [_rows(sample(model, tok, [p], max_new_tokens=16, temperature=0))[0] for p in ids]
    assert together == alone


def test_seeded_sampling_is_reproducible_and_varies(sharp):
    model, tok = sharp.model, sharp.tokenizer
    ids = _ids(tok)

    def run(seed):
        return _rows(sample(model, tok, ids, max_new_tokens=10, temperature=1.0,
                            generator=torch.Generator().manual_seed(seed)))

    assert run(3) == run(3)
    assert run(3) != run(4)
    greedy = _rows(sample(model, tok, ids, max_new_tokens=10, temperature=0))
    assert run(3) != greedy


def test_top_k_1_and_tiny_top_p_are_greedy(sharp):
    model, tok = sharp.model, sharp.tokenizer
    ids = _ids(tok)
    greedy = _rows(sample(model, tok, ids, max_new_tokens=10, temperature=0))
    gen = torch.Generator().manual_seed(0)
    assert _rows(sample(model, tok, ids, max_new_tokens=10, temperature=1.0, top_k=1, generator=gen)) == greedy
    assert _rows(sample(model, tok, ids, max_new_tokens=10, temperature=1.0, top_p=1e-6, generator=gen)) == greedy


def test_top_k_restricts_choices(sharp):
    """Every sampled token is among the k most likely at its step (checked by rescoring)."""
    model, tok = sharp.model, sharp.tokenizer
    prompt = _ids(tok)[:1]
    out = sample(model, tok, prompt, max_new_tokens=8, temperature=1.5, top_k=3,
                 generator=torch.Generator().manual_seed(0), eos_token_ids=[])
    full = torch.cat([out.query_ids, out.response_ids], dim=1)
    with torch.no_grad():
        logits = model(full).logits[0]
    lq = out.query_ids.shape[1]
    for step in range(8):
        top3 = logits[lq - 1 + step].topk(3).indices.tolist()
        assert out.response_ids[0, step].item() in top3


def test_generate_returns_text_ids_and_counts(sharp):
    model, tok = sharp.model, sharp.tokenizer
    free = _rows(sample(model, tok, _ids(tok), max_new_tokens=12, temperature=0, eos_token_ids=[]))
    cfg = SamplingConfig(max_new_tokens=12, temperature=0.0, batch_size=3)
    results = generate(model, tok, [[{"role": "user", "content": q}] for q in QUESTIONS], cfg)
    assert len(results) == len(QUESTIONS) and all(isinstance(r, GenResult) for r in results)
    for r, row in zip(results, free, strict=True):
        eos = tok.eos_token_id
        expected = row[: row.index(eos)] if eos in row else row
        assert r.token_ids == expected
        assert r.n_tokens == len(r.token_ids)
        assert r.finished == (eos in row)
        assert r.text == tok.decode(expected, skip_special_tokens=True)
        assert "<|im_end|>" not in r.text


def test_generate_accepts_plain_strings_and_seeds(sharp):
    cfg = SamplingConfig(max_new_tokens=6, temperature=1.0, seed=7, batch_size=2)
    a = generate(sharp.model, sharp.tokenizer, ["hi", "Write a poem", "yes"], cfg)
    b = generate(sharp.model, sharp.tokenizer, ["hi", "Write a poem", "yes"], cfg)
    assert [r.token_ids for r in a] == [r.token_ids for r in b]


def test_eos_row_finishes_and_scored_ids_rebuild_it(tiny_model_dir):
    """With EOS made the likeliest token, rows end at once and scored_ids reproduce the sequence."""
    from tuilab.modeling.loading import load_model

    loaded = load_model(tiny_model_dir)
    model, tok = loaded.model, loaded.tokenizer
    head = torch.nn.Linear(model.config.hidden_size, model.config.vocab_size, bias=True)
    with torch.no_grad():
        head.weight.zero_()
        head.bias.zero_()
        head.bias[tok.eos_token_id] = 10.0
    model.lm_head = head  # every step's likeliest token is EOS
    msgs = [{"role": "user", "content": "hi"}]
    out = sample(model, tok, [prompt_ids(tok, msgs)], max_new_tokens=5, temperature=0)
    assert out.finished == [True] and out.lengths == [1]
    result = generate(model, tok, [msgs], SamplingConfig(max_new_tokens=5, temperature=0))[0]
    assert result.finished and result.n_tokens == 0 and result.text == ""
    assert scored_ids(tok, msgs, result.token_ids) == prompt_ids(tok, msgs) + [tok.eos_token_id]


def test_outputs_feed_a_training_forward(sharp):
    """Sampled ids are ordinary tensors (not inference-mode ones): autograd can save them."""
    from tiny import build_model

    from tuilab.config import LoraSettings
    from tuilab.modeling.lora import add_adapter

    model = build_model(sharp.tokenizer)
    peft_model = add_adapter(model, "policy", LoraSettings())
    out = sample(peft_model, sharp.tokenizer, _ids(sharp.tokenizer), max_new_tokens=4, temperature=1.0,
                 generator=torch.Generator().manual_seed(0))
    assert not out.response_ids.is_inference()
    full = torch.cat([out.query_ids, out.response_ids], dim=1)
    mask = torch.cat([out.query_mask, out.response_mask], dim=1)
    peft_model.train()
    peft_model(input_ids=full, attention_mask=mask).logits.mean().backward()
    assert any(p.grad is not None for p in peft_model.parameters() if p.requires_grad)


def test_stop_tokens(sharp):
    tok = sharp.tokenizer
    stops = stop_token_ids(tok, sharp.model)
    assert tok.convert_tokens_to_ids("<|im_end|>") in stops
    assert tok.pad_token_id not in stops


@pytest.mark.parametrize("bad", [dict(prompts=[]), dict(prompts=[[]]), dict(max_new_tokens=0)])
def test_bad_input_is_refused(sharp, bad):
    kwargs = dict(prompts=_ids(sharp.tokenizer)[:1], max_new_tokens=4) | bad
    with pytest.raises(ValueError):
        sample(sharp.model, sharp.tokenizer, kwargs["prompts"], max_new_tokens=kwargs["max_new_tokens"])


def test_four_bit_model_generates(tiny64_dir):
    from tuilab.modeling.loading import load_model

    loaded = load_model(tiny64_dir, four_bit=True)
    assert loaded.four_bit
    results = generate(loaded.model, loaded.tokenizer, ["hi", "Write a poem about the sea"],
                       SamplingConfig(max_new_tokens=5, temperature=0.8, seed=0))
    assert [r.n_tokens + r.finished for r in results] == [min(5, r.n_tokens + r.finished) for r in results]
    assert all(r.n_tokens + r.finished >= 1 for r in results)


@pytest.mark.parametrize(
    ("temperature", "top_p", "top_k", "expected"),
    [
        (1.0, 1.0, 0, [0.05, 0.1, 0.15, 0.2, 0.5]),
        (1.0, 1.0, 2, [0, 0, 0, 0.2 / 0.7, 0.5 / 0.7]),
        (1.0, 0.6, 0, [0, 0, 0, 0.2 / 0.7, 0.5 / 0.7]),  # smallest set reaching 0.6: {0.5, 0.2}
        (1.0, 0.5, 0, [0, 0, 0, 0, 1.0]),
        (0.5, 1.0, 0, [p * p / 0.325 for p in (0.05, 0.1, 0.15, 0.2, 0.5)]),
    ],
)
def test_sampling_distribution(temperature, top_p, top_k, expected):
    from tuilab.modeling.generation import _pick_next

    probs = torch.tensor([0.05, 0.1, 0.15, 0.2, 0.5])
    logits = probs.log().expand(100_000, 5).contiguous()
    picks = _pick_next(logits, temperature, top_p, top_k, torch.Generator().manual_seed(0))
    freq = torch.bincount(picks, minlength=5).float() / len(picks)
    assert torch.allclose(freq, torch.tensor(expected), atol=0.01)
    assert all(freq[i] == 0 for i, e in enumerate(expected) if e == 0)  # masked tokens never drawn


def test_sampling_runs_without_dropout_and_restores_train_mode(tiny_model_dir):
    """A policy in train mode with LoRA dropout samples as in eval mode, and stays in train mode."""
    from tuilab.config import LoraSettings
    from tuilab.modeling.loading import load_model
    from tuilab.modeling.lora import add_adapter

    loaded = load_model(tiny_model_dir)
    model = add_adapter(loaded.model, "policy", LoraSettings(dropout=0.5))
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_" in name:  # LoRA B starts at zero, which would hide dropout
                p.copy_(torch.randn(p.shape, generator=gen))
    ids = _ids(loaded.tokenizer)
    eval_rows = _rows(sample(model, loaded.tokenizer, ids, max_new_tokens=8, temperature=0))
    model.train()
    train_rows = _rows(sample(model, loaded.tokenizer, ids, max_new_tokens=8, temperature=0))
    assert train_rows == eval_rows
    assert model.training


def test_on_step_streams_every_token_in_order(sharp):
    """What the callback sees, row by row, is exactly what sample() returns (EOS included)."""
    model, tok = sharp.model, sharp.tokenizer
    seen: dict[int, list[int]] = {}

    def on_step(rows, tokens):
        assert len(rows) == len(tokens) and len(set(rows)) == len(rows)
        for r, t in zip(rows, tokens, strict=True):
            seen.setdefault(r, []).append(t)

    gen = torch.Generator().manual_seed(3)
    out = sample(model, tok, _ids(tok), max_new_tokens=10, temperature=1.0, generator=gen, on_step=on_step)
    assert sorted(seen) == list(range(len(QUESTIONS)))
    assert [seen[i] for i in range(len(QUESTIONS))] == _rows(out)


def test_on_step_returning_true_stops_decoding(sharp):
    model, tok = sharp.model, sharp.tokenizer
    calls = []

    def stop_after_three(rows, tokens):
        calls.append(len(rows))
        return len(calls) == 3

    out = sample(model, tok, _ids(tok), max_new_tokens=12, temperature=0, eos_token_ids=[],
                 on_step=stop_after_three)
    assert len(calls) == 3 and out.lengths == [3] * len(QUESTIONS)
    assert not any(out.finished)


def test_generate_on_step_uses_prompt_indices_and_skips_later_batches(sharp):
    """Row indices are global across batches; a stop leaves later batches unstarted."""
    cfg = SamplingConfig(max_new_tokens=4, temperature=0.0, batch_size=2)
    prompts = [[{"role": "user", "content": q}] for q in QUESTIONS]
    rows_seen: set[int] = set()

    def record(rows, tokens):
        rows_seen.update(rows)

    full = generate(sharp.model, sharp.tokenizer, prompts, cfg, on_step=record)
    assert len(full) == len(QUESTIONS) and rows_seen == set(range(len(QUESTIONS)))

    first_batch_only = generate(sharp.model, sharp.tokenizer, prompts, cfg,
                                on_step=lambda rows, tokens: max(rows) >= 1)
    assert len(first_batch_only) == 2


def test_per_row_streams_draw_as_separate_calls_would(sharp):
    """`generators`: each stream draws for its own rows only, so interleaved rows of two streams
    get exactly the tokens two separate calls give; a list of the wrong length is refused."""
    model, tok = sharp.model, sharp.tokenizer
    ids = _ids(tok)
    a = sample(model, tok, ids[:2], max_new_tokens=12, temperature=1.0, generator=torch.Generator().manual_seed(3))
    b = sample(model, tok, ids[2:], max_new_tokens=12, temperature=1.0, generator=torch.Generator().manual_seed(4))
    ga, gb = torch.Generator().manual_seed(3), torch.Generator().manual_seed(4)
    both = sample(model, tok, ids, max_new_tokens=12, temperature=1.0, generators=[ga, ga, gb, gb])
    assert _rows(both) == _rows(a) + _rows(b)
    assert both.finished == a.finished + b.finished
    with pytest.raises(ValueError, match="3 generators for 4 prompts"):
        sample(model, tok, ids, max_new_tokens=4, generators=[ga, ga, gb])
