"""Batched sampling with our own decode loop: left padding, KV cache, finished rows dropped.

Why not `model.generate`: it keeps decoding rows that already emitted EOS until
the longest row ends, so with answers of mixed length much of its work is
wasted (`bench/generate.py` prints its useful and total tokens per second side
by side). Here every step runs only the rows still going; their cache rows are
selected out of the `DynamicCache`, and the prompt's logits are computed for
the last position only.

`sample` is what PPO uses (token tensors, masks, lengths); `generate` is the
chat-level wrapper the labeling queue and the CLI use (decoded text). Both take
`on_step`, called after every decode step with the rows still decoding and the
token each just produced: a caller streams text onto a screen from it, and
stops decoding early by returning True.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from tuilab.config import SamplingConfig
from tuilab.modeling.chat import Message, as_messages, prompt_ids

# on_step(rows, tokens): the indices (into the prompts given) of the rows decoded in
# this step and the token each produced, EOS included; return True to stop decoding.
StepCallback = Callable[[list[int], list[int]], "bool | None"]


@dataclass
class GenResult:
    """One generated answer.

    `token_ids` are the answer's tokens without the closing EOS (so
    `chat.scored_ids(tok, messages, token_ids)` rebuilds exactly what the model
    produced); `n_tokens == len(token_ids)`; `finished` says whether it ended with
    EOS (False: cut at `max_new_tokens`).
    """

    text: str
    token_ids: list[int]
    n_tokens: int
    finished: bool


@dataclass
class SampleBatch:
    """A batch of rollouts, rows in the order of the prompts given.

    query_ids / query_mask: [B, Lq], left-padded prompts.
    response_ids / response_mask: [B, Lr], right-padded with pad after the
    response; a finished row's response ends with its EOS token, which counts
    in `lengths` and in the mask. Lr = max(lengths).
    """

    query_ids: Any
    query_mask: Any
    response_ids: Any
    response_mask: Any
    lengths: list[int]
    finished: list[bool]


def stop_token_ids(tokenizer: Any, model: Any = None) -> list[int]:
    """The tokenizer's EOS, `<|im_end|>` when the vocabulary has it, and the generation config's EOS."""
    ids: list[int] = []
    if tokenizer.eos_token_id is not None:
        ids.append(int(tokenizer.eos_token_id))
    im_end = tokenizer.get_vocab().get("<|im_end|>")
    if im_end is not None:
        ids.append(int(im_end))
    gen_cfg = getattr(model, "generation_config", None)
    extra = getattr(gen_cfg, "eos_token_id", None)
    if extra is not None:
        ids.extend(int(i) for i in (extra if isinstance(extra, (list, tuple)) else [extra]))
    pad = tokenizer.pad_token_id
    return sorted({i for i in ids if i != pad})


def _forward_params(model: Any) -> set[str]:
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return set(inspect.signature(base.forward).parameters)


def _cache_kwarg(params: set[str]) -> str:
    """transformers 5 calls the cache argument `cache`; older and remote code `past_key_values`."""
    return "cache" if "cache" in params else "past_key_values"


def _cache_of(out: Any) -> Any:
    cache = getattr(out, "cache", None)
    return cache if cache is not None else out.past_key_values


def _model_device(model: Any):
    import torch

    try:
        return next(p.device for p in model.parameters() if p.device.type != "meta")
    except StopIteration:
        return torch.device("cpu")


def _pick_next(logits, temperature: float, top_p: float, top_k: int, generator):
    """Next token per row from last-position logits [b, V] (float32); greedy when temperature <= 0."""
    import torch

    if temperature <= 0:
        return logits.argmax(dim=-1)
    logits = logits / temperature
    if top_k and 0 < top_k < logits.shape[-1]:
        kth = torch.topk(logits, top_k, dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p < 1.0:
        sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
        probs = sorted_logits.softmax(dim=-1)
        # Drop a token when the tokens before it already cover top_p (the first always stays).
        drop = (probs.cumsum(dim=-1) - probs) >= top_p
        sorted_logits = sorted_logits.masked_fill(drop, float("-inf"))
        logits = torch.full_like(logits, float("-inf")).scatter(-1, order, sorted_logits)
    return _draw(logits.softmax(dim=-1), generator)


def _draw(probs, generator):
    """One token per row by inverse CDF: one uniform per row.

    `torch.multinomial` draws one exponential per vocabulary entry (49 k per row
    for SmolLM2), which costs as much as a sizeable part of a decode step on a
    CPU. `right=True` never lands on a zero-probability token (masked by top-k/p).
    """
    import torch

    cdf = probs.cumsum(dim=-1)
    device = generator.device if generator is not None else probs.device
    u = torch.rand((probs.shape[0], 1), generator=generator, device=device).to(probs.device)
    picked = torch.searchsorted(cdf, u * cdf[:, -1:], right=True)
    return picked.clamp_(max=probs.shape[-1] - 1).squeeze(-1)


def sample(
    model: Any,
    tokenizer: Any,
    prompt_id_lists: Sequence[Sequence[int]],
    *,
    max_new_tokens: int,
    temperature: float = 1.0,
    top_p: float = 1.0,
    top_k: int = 0,
    generator: Any = None,
    eos_token_ids: Sequence[int] | None = None,
    on_step: StepCallback | None = None,
    adapter_names: Sequence[str] | None = None,
    generators: Sequence[Any] | None = None,
) -> SampleBatch:
    """Sample continuations for token-id prompts in one batch; see `SampleBatch`.

    `model` may be a PeftModel (whichever adapter is active is used) or a 4-bit
    model. `temperature <= 0` is greedy. `generator` (a `torch.Generator`) makes
    sampling reproducible. `eos_token_ids` overrides the stop tokens
    (default: `stop_token_ids(tokenizer, model)`). `on_step`: see the module
    docstring; rows it stops stay `finished=False`, as if cut at the limit.

    Mixed batches (a PeftModel only): `adapter_names` gives each row its adapter
    ("__base__": adapters off), and `generators` each row its random stream. A
    decode step reads the base weights once for every row, and on a CPU that
    read is most of a step, so rows of two policies decode together for little
    more than one policy's rows. Each stream draws for its own rows only, in row
    order, exactly as a call with only those rows would.
    """
    import torch

    if not prompt_id_lists:
        raise ValueError("sample() needs at least one prompt")
    if any(len(p) == 0 for p in prompt_id_lists):
        raise ValueError("sample() got an empty prompt")
    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
    device = _model_device(model)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    stops = list(eos_token_ids) if eos_token_ids is not None else stop_token_ids(tokenizer, model)
    params = _forward_params(model)
    cache_arg = _cache_kwarg(params)
    # Prompt logits are needed at the last position only (saves B x Lq x vocab work).
    prefill_extra = {"logits_to_keep": 1} if "logits_to_keep" in params else {}

    batch = len(prompt_id_lists)
    for name, given in (("adapter_names", adapter_names), ("generators", generators)):
        if given is not None and len(given) != batch:
            raise ValueError(f"sample(): {len(given)} {name} for {batch} prompts")
    streams = _Streams(generator, generators, device)
    lq = max(len(p) for p in prompt_id_lists)
    query_ids = torch.full((batch, lq), pad, dtype=torch.long)
    query_mask = torch.zeros((batch, lq), dtype=torch.long)
    for i, ids in enumerate(prompt_id_lists):
        query_ids[i, lq - len(ids):] = torch.tensor(list(ids), dtype=torch.long)
        query_mask[i, lq - len(ids):] = 1
    outputs: list[list[int]] = [[] for _ in range(batch)]
    finished = [False] * batch

    was_training = bool(getattr(model, "training", False))
    if was_training:
        model.eval()  # no dropout in rollouts (N+ implementation details); restored below
    try:
        _decode(model, query_ids, query_mask, device, stops, cache_arg, prefill_extra, max_new_tokens,
                temperature, top_p, top_k, streams, outputs, finished, on_step,
                list(adapter_names) if adapter_names is not None else None)
    finally:
        if was_training:
            model.train()

    # Built outside inference mode so PPO can feed these ids to a forward pass with autograd.
    lengths = [len(o) for o in outputs]
    lr = max(lengths)
    response_ids = torch.full((batch, lr), pad, dtype=torch.long)
    response_mask = torch.zeros((batch, lr), dtype=torch.long)
    for i, o in enumerate(outputs):
        response_ids[i, : len(o)] = torch.tensor(o, dtype=torch.long)
        response_mask[i, : len(o)] = 1
    return SampleBatch(
        query_ids=query_ids.to(device),
        query_mask=query_mask.to(device),
        response_ids=response_ids.to(device),
        response_mask=response_mask.to(device),
        lengths=lengths,
        finished=finished,
    )


class _Streams:
    """The random stream(s) of a batch: one generator for every row, or one per row (grouped by identity)."""

    def __init__(self, generator: Any, per_row: Sequence[Any] | None, device: Any) -> None:
        import torch

        self.single = per_row is None
        self.generator = generator
        if not self.single:
            self.gens: list[Any] = []
            index = []
            for g in per_row:
                known = next((k for k, h in enumerate(self.gens) if h is g), None)
                if known is None:
                    self.gens.append(g)
                    known = len(self.gens) - 1
                index.append(known)
            self.row_stream = torch.tensor(index, dtype=torch.long, device=device)

    def pick(self, logits, rows, temperature: float, top_p: float, top_k: int):
        """Next token for the live `rows` (original indices), each row's stream drawing for its own rows."""
        if self.single:
            return _pick_next(logits, temperature, top_p, top_k, self.generator)
        streams = self.row_stream[rows]
        out = streams.new_empty(streams.shape)
        for k, gen in enumerate(self.gens):
            sel = (streams == k).nonzero().squeeze(-1)
            if sel.numel():
                out[sel] = _pick_next(logits[sel], temperature, top_p, top_k, gen)
        return out


def _decode(model, query_ids, query_mask, device, stops, cache_arg, prefill_extra, max_new_tokens,
            temperature, top_p, top_k, streams, outputs, finished, on_step=None, adapter_names=None) -> None:
    """The decode loop: fills `outputs` (tokens per row) and `finished` in place."""
    import torch

    with torch.inference_mode():
        ids = query_ids.to(device)
        mask = query_mask.to(device)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        stop_tensor = torch.tensor(stops, dtype=torch.long, device=device)
        rows = torch.arange(ids.shape[0], device=device)  # original index of each live row
        mixed = {"adapter_names": adapter_names} if adapter_names is not None else {}
        out = model(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True, **prefill_extra,
                    **mixed)
        cache = _cache_of(out)
        last_pos = positions[:, -1:]
        for step in range(max_new_tokens):
            nxt = streams.pick(out.logits[:, -1, :].float(), rows, temperature, top_p, top_k)
            done = torch.isin(nxt, stop_tensor)
            # One host sync per step: the tokens and which rows ended.
            synced = torch.stack([rows, nxt, done.long()], dim=1).tolist()
            for r, t, d in synced:
                outputs[r].append(t)
                finished[r] = bool(d)
            if on_step is not None and on_step([r for r, _, _ in synced], [t for _, t, _ in synced]):
                break
            if step == max_new_tokens - 1:
                break
            if bool(done.any()):
                keep = (~done).nonzero().squeeze(-1)
                if keep.numel() == 0:
                    break
                # Finished rows leave the batch, cache rows included: they cost nothing from here on.
                rows, nxt, mask, last_pos = rows[keep], nxt[keep], mask[keep], last_pos[keep]
                cache.batch_select_indices(keep)
                if adapter_names is not None:
                    mixed = {"adapter_names": [adapter_names[r] for r in rows.tolist()]}
            mask = torch.cat([mask, mask.new_ones((mask.shape[0], 1))], dim=-1)
            last_pos = last_pos + 1
            out = model(
                input_ids=nxt[:, None],
                attention_mask=mask,
                position_ids=last_pos,
                use_cache=True,
                **{cache_arg: cache},
                **mixed,
            )
            cache = _cache_of(out)


def make_generator(seed: int | None, device: Any = None):
    """A seeded `torch.Generator` on `device` (None when `seed` is None: global RNG)."""
    import torch

    if seed is None:
        return None
    gen = torch.Generator(device=device or "cpu")
    gen.manual_seed(int(seed))
    return gen


def generate(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[list[Message] | str],
    cfg: SamplingConfig | None = None,
    on_step: StepCallback | None = None,
) -> list[GenResult]:
    """Chat prompts → answers, `cfg.batch_size` prompts per batch, in the order given.

    `on_step` sees row indices into `prompts` (not into the batch). When it stops
    decoding, the batches not yet started are not run: fewer results come back.
    """
    cfg = cfg or SamplingConfig()
    if cfg.batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {cfg.batch_size}")
    generator = make_generator(cfg.seed, _model_device(model))
    id_lists = [prompt_ids(tokenizer, as_messages(p)) for p in prompts]
    results: list[GenResult] = []
    stopped = False
    for start in range(0, len(id_lists), cfg.batch_size):
        chunk = id_lists[start : start + cfg.batch_size]
        step_cb = None
        if on_step is not None:
            def step_cb(rows: list[int], tokens: list[int], _start: int = start) -> bool:
                nonlocal stopped
                stopped = bool(on_step([_start + r for r in rows], tokens))
                return stopped
        out = sample(
            model,
            tokenizer,
            chunk,
            max_new_tokens=cfg.max_new_tokens,
            temperature=cfg.temperature,
            top_p=cfg.top_p,
            top_k=cfg.top_k,
            generator=generator,
            on_step=step_cb,
        )
        ids = out.response_ids.tolist()
        for row, length, fin in zip(ids, out.lengths, out.finished, strict=True):
            tokens = row[: length - 1] if fin else row[:length]
            text = tokenizer.decode(tokens, skip_special_tokens=True)
            results.append(GenResult(text=text, token_ids=tokens, n_tokens=len(tokens), finished=fin))
        if stopped:
            break
    return results
