"""PPO for a LoRA policy against a reward model, on one shared base model (CleanRL-style: one file, top to bottom).

Models (DESIGN.md, "One base model, many adapters"): the base is loaded once
(4-bit when asked). `policy` is a LoRA adapter on it; the reference policy is
the same model with adapters disabled; the reward model is one or more reward
adapters with scalar heads loaded onto the same PeftModel
(`RewardModel.load(run_dir, base=peft_model)`). No second copy of the base.

The critic is a linear value head on the *policy's* last hidden states, read
detached, not a separate `value` adapter: one forward pass of the policy
yields the logits and the values of a minibatch, while a critic adapter needs
a second forward and backward through the whole trunk (measured on
SmolLM2-135M, CPU, minibatch 4 × (40 + 48) tokens: 1.9× as long at 1 thread,
2.3× at 2). Detached, the value loss trains the head only: it can neither
steer the policy adapter nor, through a shared gradient-norm clip, shrink its
steps. The head starts at V ≡ 0 (see `_value_head` for why not the reward
head) and has its own, smaller learning rate (`value_learning_rate`: at the
policy's, it fitted each batch's noise); the PPO health metrics (`val/explained_variance`, `policy/approxkl_avg`,
`policy/clipfrac_avg`, `policy/grad_norm`, `val/grad_norm`, `loss/value_avg`)
and the monitor's `critic_not_fitting` / `policy_stalled` warnings say whether
the critic fits and the policy moves.

Each implementation detail from "The N+ implementation details of RLHF with
PPO" (Huang et al. 2024) is marked `# N+:` at the
line that does it (the list is from that paper):
- left-pad prompts; fixed response length, truncation after the first EOS
- responses without EOS lose score (`truncated`: subtract a penalty, or N+'s constant); reward read at the last real token
- dropout off everywhere; log-probs of logits ÷ sampling temperature
- reward whitening without mean shift (optional, `whiten_rewards`); advantage whitening
- clipped policy loss (clip 0.2), clipped value loss, vf_coef 0.1
- AdamW eps 1e-5; linear LR decay (`lr_decay`; a resumed run that is extended decays on from where it was); γ 1, λ 0.95
- per-token KL penalty, β 0.05 fixed or adaptive (target 6, horizon 10000)
- subtract the SFT mean reward: scores are the reward model's normalised scores
  (`score_ids(normalize=True)`: each member's training mean and std), which
  centres them without a pass over the SFT policy's samples
Omitted, with the reason:
- RM head init N(0, 1/√(d+1)): a reward-model training detail, done in `modeling/heads.py`.
- 4 PPO epochs: the config defaults to 2 (half the cost per update); set `ppo_epochs = 4` for the paper's value.
- Critic initialised from the reward model: its head reads the reward adapter's features, not the
  policy's; on the policy's it was worse than a constant (explained variance −2.3 … −5.6 over the
  first updates of the length-hack scenario), so the head starts at 0 instead.
- A separate full critic model: replaced by the value head above (memory and time).
- Gradient accumulation across minibatches: each minibatch is one optimiser step.
  (On a CPU a minibatch is split into micro-batches of ≤ `MICROBATCH_TOKENS`
  tokens whose gradients add up to exactly the minibatch's: memory, not maths.)

Cost per step: the old log-probs and values are read from the hidden states
the sampler computed anyway (`_SampledHidden`, a forward hook on the trunk),
so a rollout costs the sampling, one reference forward and one reward forward;
the update costs `ppo_epochs` forward + backward passes over the batch. The
policy and reference forwards pack their rows into one, without padding, the
prompts' common prefix (the chat template's system prompt) once for all
(`_forward_packed`, checked at first use against the plain forward on this
model); the reward forward runs that prefix once too (`trunk.last_token_hidden`).

Reference responses (Sample.ref_response) are sampled from the reference
policy every `sample_every` steps at the *same temperature* as the policy, from
their own RNG stream: the inspector then compares two draws from the same kind
of distribution (greedy decoding from a small model is shorter and loopier
than its samples, which would make the reference look worse than it is), and
the policy's own rollouts do not depend on `sample_every`. They decode in the
policy's sampling batch, adapters off for their rows (`_generate`).

Several processes (`training.distributed`, under torchrun or accelerate
launch): each rank samples its contiguous share of every step's prompts from
its own RNG streams (rank 0's are the single-process ones), reward whitening,
advantage whitening, explained variance and every token mean are summed over
the ranks, the update's minibatch is split the same way with each rank's loss
weighted by its share of the minibatch's tokens (DDP averages the gradients),
and every rank's rows are gathered for the metrics, the monitor and the
samples. Only the main process writes the run folder; checkpoints carry each
rank's RNG state.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tuilab.config import PPOConfig, to_dict
from tuilab.diagnostics.monitor import HackingMonitor
from tuilab.modeling.chat import as_messages, prompt_ids, scored_ids
from tuilab.modeling.generation import sample
from tuilab.modeling.loading import LoadedModel
from tuilab.modeling.trunk import as_mask, packed_mask_dtype, shared_start
from tuilab.records import Prompt, Sample
from tuilab.training import checkpoints as ck
from tuilab.training import ppo_math as pm
from tuilab.training.distributed import SINGLE, Dist, current
from tuilab.training.events import (
    CancelledRun,
    Checkpoint,
    Finished,
    Metrics,
    RunControl,
    RunWarning,
    Samples,
    Sink,
)
from tuilab.training.packing import sliding_window

POLICY = "policy"
STATE_FILE = ck.STATE_FILE
find_latest_checkpoint = ck.find_latest_checkpoint
VALUE_DIR = "value"
MANIFEST = "ppo.json"

# (scored ids = prompt + response + EOS, response ids without EOS, response texts) → [n] or [K, n]
RewardFn = Callable[[list[list[int]], list[list[int]], list[str]], Any]
# (prompts, response texts) → gold scores
GoldFn = Callable[[list[Prompt], list[str]], Sequence[float]]


# ======================================================================== setup
def prepare_policy(base: LoadedModel, cfg: PPOConfig, model: Any = None) -> Any:
    """The PeftModel carrying the trainable `policy` adapter (added once); `base.model` then points at it.

    Pass `model` when another component (a RewardModel loaded first) already
    wrapped the base in a PeftModel.
    """
    from peft import PeftModel

    from tuilab.modeling.lora import add_adapter

    model = model if model is not None else base.model
    if not (isinstance(model, PeftModel) and POLICY in model.peft_config):
        model = add_adapter(model, POLICY, cfg.lora)
    model.set_adapter(POLICY)
    _freeze_all_but_policy(model)
    model.eval()  # N+: dropout off everywhere (LoRA dropout too): log-probs must be deterministic
    base.model = model
    return model


def _freeze_all_but_policy(model: Any) -> list[torch.nn.Parameter]:
    params = []
    for name, p in model.named_parameters():
        trainable = "lora_" in name and f".{POLICY}." in name
        p.requires_grad_(trainable)
        if trainable:
            params.append(p)
    return params


def _body_and_head(model: Any) -> tuple[torch.nn.Module, torch.nn.Module]:
    """The transformer trunk (LoRA layers live inside it) and the LM head, called separately
    so values come from the same hidden states and logits are computed for response tokens only."""
    from tuilab.modeling.trunk import backbone_of

    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    return backbone_of(model), inner.get_output_embeddings()


def reward_callable(reward: Any) -> tuple[RewardFn, Any]:
    """A RewardModel (anything with `score_ids`) or a RewardFn → (RewardFn, the RewardModel or None)."""
    if hasattr(reward, "score_ids"):
        rm = reward

        def score(scored: list[list[int]], responses: list[list[int]], texts: list[str]) -> torch.Tensor:
            # N+: "subtract the SFT mean reward": normalised with each member's training statistics.
            return rm.score_ids(scored, normalize=True)

        return score, rm
    if callable(reward):
        return reward, None
    raise TypeError(f"reward must be a RewardModel, a reward run folder or a callable, got {type(reward).__name__}")


def load_reward(spec: str | os.PathLike, model: Any, tokenizer: Any) -> Any:
    """Load a reward run folder onto the policy's PeftModel (no second base)."""
    from tuilab.modeling.reward_model import RewardModel

    return RewardModel.load(Path(spec), base=model, tokenizer=tokenizer)


def resolve_gold(spec: str, model: Any, tokenizer: Any) -> GoldFn:
    """`cfg.gold_scorer` → GoldFn: "module:function" ((prompt, response) or (text) → float)
    or a reward run folder, scored with `RewardModel` on the same base."""
    spec = spec.strip()
    path = Path(spec).expanduser()
    if path.is_dir():
        rm = load_reward(path, model, tokenizer)

        def rm_gold(prompts: list[Prompt], texts: list[str]) -> list[float]:
            return rm.score([p.messages for p in prompts], texts).mean

        return rm_gold
    from tuilab.diagnostics.gold import load_gold_scorer

    fn = load_gold_scorer(spec)

    def fn_gold(prompts: list[Prompt], texts: list[str]) -> list[float]:
        return [float(fn(p.text, t)) for p, t in zip(prompts, texts, strict=True)]

    return fn_gold


def batch_indices(n_prompts: int, batch_size: int, step: int, seed: int) -> list[int]:
    """Prompts for 1-based `step`: consecutive slices of seeded per-epoch permutations.

    A pure function of (step, seed), so a resumed run draws exactly the batches
    an uninterrupted one would have (the data-order position is (step − 1)·batch).
    """
    start = (step - 1) * batch_size
    out = []
    for pos in range(start, start + batch_size):
        epoch, offset = divmod(pos, n_prompts)
        perm = np.random.default_rng([seed, epoch]).permutation(n_prompts)
        out.append(int(perm[offset]))
    return out


# ======================================================================== one rollout
@dataclass
class Rollout:
    input_ids: torch.Tensor  # [B, Lq + Lr]
    attention_mask: torch.Tensor
    position_ids: torch.Tensor
    q_len: int
    response_ids: torch.Tensor  # [B, Lr]
    mask: torch.Tensor  # [B, Lr] float, 1 on real response tokens (EOS included)
    finished: torch.Tensor  # [B] bool
    tokens: list[list[int]]  # response tokens without EOS
    texts: list[str]
    decoded_lengths: list[int]  # every row of the sampling batch (reference rows too): what the capture saw
    packed: bool = False  # forwards pack the rows into one (`_forward_packed`)
    prefix: int = 0  # prompt tokens every row starts with: a packed forward runs them once


def _positions(mask: torch.Tensor) -> torch.Tensor:
    # N+: left-padded prompts need explicit positions, or the first real token of a short prompt is not at 0.
    return (mask.cumsum(-1) - 1).clamp_min(0)


def _forward(body: torch.nn.Module, lm_head: torch.nn.Module, ro: Rollout, rows: Any, temperature: float):
    """Hidden states for the response positions (trimmed to this minibatch) → (logits, hidden, columns)."""
    if ro.packed and len(rows) > 1 and int(ro.attention_mask[rows].sum()) - (len(rows) - 1) * ro.prefix <= PACK_TOKENS:
        return _forward_packed(body, lm_head, ro, rows)
    ids, am, pos, mask = ro.input_ids[rows], ro.attention_mask[rows], ro.position_ids[rows], ro.mask[rows]
    q = ro.q_len
    # Trim columns that are padding in every row of this minibatch (left of the prompts, right of the responses).
    first = int((am[:, :q].sum(0) > 0).nonzero()[0]) if q else 0
    last = int((mask.sum(0) > 0).nonzero()[-1]) + 1 if mask.sum() > 0 else 1
    ids, am, pos = ids[:, first : q + last], am[:, first : q + last], pos[:, first : q + last]
    out = body(input_ids=ids, attention_mask=am, position_ids=pos, use_cache=False)
    hidden = out.last_hidden_state if hasattr(out, "last_hidden_state") else out[0]
    # The token at response index t is predicted from the position before it.
    h = hidden[:, q - first - 1 : q - first - 1 + last]
    logits = lm_head(h)
    return logits, h, last


# The longest packed line: its attention mask is line × line, so longer batches (a GPU's) run padded.
PACK_TOKENS = 1024


def _forward_packed(body: torch.nn.Module, lm_head: torch.nn.Module, ro: Rollout, rows: Any):
    """`_forward` with the rows packed into one: the prompts' common prefix once, then each row's own
    tokens (the rest of its prompt, its response up to EOS), no padding. Same result (tested).

    A segment attends to the prefix and to itself only, and keeps its own position ids, so every
    token computes what it would in its own row. On the scenario's prompts the chat template's
    27 tokens open every 40-token prompt; with answers of mixed length, padding to the longest was
    as much again. `bench/ppo_passes.py` (idle, 2 threads): a minibatch's forward + backward 1.59× as fast
    with answers of 10–48 tokens, 1.17× with every answer at the 48-token cap.
    """
    q, P = ro.q_len, ro.prefix
    ids_rows, pos_rows = ro.input_ids[rows], ro.position_ids[rows]
    lens = ro.attention_mask[rows, :q].sum(1).tolist()
    resp = ro.mask[rows].sum(1).long().tolist()  # real response tokens, EOS included
    last = max(max(resp), 1)
    first = q - lens[0]
    ids, pos, seg = [ids_rows[0, first : first + P]], [pos_rows[0, first : first + P]], [0] * P
    at_row, at_t, at_packed = [], [], []
    cursor = P
    for i, (n_q, n_r) in enumerate(zip(lens, resp, strict=True)):
        a, b = q - n_q + P, q + n_r  # this row's tokens after the prefix
        ids.append(ids_rows[i, a:b])
        pos.append(pos_rows[i, a:b])
        seg += [i + 1] * (b - a)
        predicts = cursor + (n_q - P) - 1  # the last prompt token predicts response token 0
        at_row += [i] * n_r
        at_t += range(n_r)
        at_packed += range(predicts, predicts + n_r)
        cursor += b - a
    dev = ids_rows.device
    segment = torch.tensor(seg, device=dev)
    attend = torch.ones(cursor, cursor, dtype=torch.bool, device=dev).tril()
    attend &= (segment[None, :] == 0) | (segment[None, :] == segment[:, None])
    out = body(input_ids=torch.cat(ids)[None], attention_mask=as_mask(attend[None, None], packed_mask_dtype(body)),
               position_ids=torch.cat(pos)[None], use_cache=False)
    hidden = (out.last_hidden_state if hasattr(out, "last_hidden_state") else out[0])[0]
    where = (torch.tensor(at_row, device=dev), torch.tensor(at_t, device=dev))
    h = hidden.new_zeros(len(lens), last, hidden.shape[-1]).index_put(where, hidden[torch.tensor(at_packed, device=dev)])
    return lm_head(h), h, last


# Tokens per forward/backward pass in the update. On a CPU, activations of a minibatch of 4 × ~90
# tokens of SmolLM2-135M take ~700 MB, so a long-context minibatch is split; but small passes
# are slow there: 8 rows of 45 + 48 tokens, forward + backward at 2 threads, took 5.5 s in
# passes of 2 rows, 4.4 s in passes of 4 and 4.2 s in one pass (medians of 5, idle machine).
# GPUs take the whole minibatch.
MICROBATCH_TOKENS = {"cpu": 512}
DEFAULT_MICROBATCH_TOKENS = 1 << 20


def _rows_per_microbatch(ro: Rollout, device: torch.device) -> int:
    budget = MICROBATCH_TOKENS.get(device.type, DEFAULT_MICROBATCH_TOKENS)
    return max(1, budget // max(int(ro.input_ids.shape[1]), 1))


def _pad_cols(x: torch.Tensor, width: int) -> torch.Tensor:
    if x.shape[1] == width:
        return x
    return torch.nn.functional.pad(x, (0, width - x.shape[1]))


class _SampledHidden:
    """The trunk's last hidden state at every sampling call: the positions PPO scores.

    The sampler's prefill yields the state that predicts response token 0, and
    its k-th decode call the one that predicts token k, for the rows still
    running (rows leave in order once they end). Reusing these saves the policy
    forward pass over the rollout that would otherwise recompute them.
    """

    def __init__(self, body: torch.nn.Module) -> None:
        self.calls: list[torch.Tensor] = []
        self._handle = body.register_forward_hook(self._hook)

    def _hook(self, module, args, output) -> None:
        hidden = output.last_hidden_state if hasattr(output, "last_hidden_state") else output[0]
        self.calls.append(hidden[:, -1].clone())

    def close(self) -> None:
        self._handle.remove()

    def assemble(self, lengths: list[int], width: int) -> torch.Tensor | None:
        """[B, width, d] (zeros after each row's end), or None if the calls do not line up."""
        if not self.calls or len(self.calls) != max(lengths):
            return None
        out = torch.zeros(len(lengths), width, self.calls[0].shape[-1], dtype=self.calls[0].dtype,
                          device=self.calls[0].device)
        for k, h in enumerate(self.calls):
            live = [i for i, n in enumerate(lengths) if n > k]
            if h.shape[0] != len(live):
                return None
            out[live, k] = h
        return out


class _PolicyValue(torch.nn.Module):
    """The update's trainable forward (policy logits, values of the detached features): what DDP wraps."""

    def __init__(self, body: torch.nn.Module, lm_head: torch.nn.Module, value_head: torch.nn.Module) -> None:
        super().__init__()
        self.body, self.lm_head, self.value_head = body, lm_head, value_head

    def forward(self, ro: Rollout, rows: Any, temperature: float):
        logits, h, width = _forward(self.body, self.lm_head, ro, rows, temperature)
        return logits, self.value_head(h.detach()), width


def _generate(model, tokenizer, id_lists, cfg: PPOConfig, generator,
              reference: torch.Generator | None = None) -> tuple[Rollout, list[str] | None]:
    """The policy's rollouts; with `reference` (its random stream), also the reference policy's answers.

    The reference rows decode in the same batch as the policy's, adapters off for them
    (`sample(adapter_names=…)`): a CPU decode step costs mostly the read of the weights, so
    they add a fraction of a second pass. Each stream draws for its own rows, so the
    policy's rollouts are the same draws with or without them.
    """
    # N+: fixed response length (max_new_tokens), rows stop at their first EOS; left-padded queries.
    n = len(id_lists)
    mixed: dict[str, Any] = {}
    if reference is not None:
        id_lists = list(id_lists) * 2
        mixed = {"adapter_names": [POLICY] * n + ["__base__"] * n, "generators": [generator] * n + [reference] * n}
    sb = sample(model, tokenizer, id_lists, max_new_tokens=cfg.max_new_tokens, temperature=cfg.temperature,
                top_p=1.0, top_k=0, generator=generator, **mixed)
    tokens = []
    for row, length, fin in zip(sb.response_ids.tolist(), sb.lengths, sb.finished, strict=True):
        tokens.append(row[: length - 1] if fin else row[:length])
    texts = tokenizer.batch_decode(tokens, skip_special_tokens=True)
    width = max(sb.lengths[:n])  # the policy rows' columns
    response_ids, response_mask = sb.response_ids[:n, :width], sb.response_mask[:n, :width]
    mask = response_mask.float()
    input_ids = torch.cat([sb.query_ids[:n], response_ids], 1)
    am = torch.cat([sb.query_mask[:n], response_mask], 1)
    ro = Rollout(input_ids, am, _positions(am), sb.query_ids.shape[1], response_ids, mask,
                 torch.tensor(sb.finished[:n], device=mask.device), tokens[:n], texts[:n], list(sb.lengths))
    return ro, (texts[n:] if reference is not None else None)


# ======================================================================== checkpoints
def _rng_states(gens: dict[str, torch.Generator]) -> dict:
    out = {k: g.get_state() for k, g in gens.items()}
    out["torch"] = torch.get_rng_state()
    if torch.cuda.is_available():
        out["cuda"] = torch.cuda.get_rng_state_all()
    return out


def _set_rng_states(gens: dict[str, torch.Generator], states: dict) -> None:
    for k, g in gens.items():
        if k in states:
            g.set_state(states[k])
    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def save_checkpoint(folder: Path, *, model, value_head, optimizer, scheduler, gens, step: int, beta: float,
                    monitor: HackingMonitor, cfg: PPOConfig, extra: dict | None = None) -> Path:
    """Adapter (standard PEFT layout under `policy/`), value head, optimiser, RNG, step, β, data position.

    Written to a temporary folder and renamed, so a kill mid-write leaves the
    previous checkpoint intact and never a half one.
    """
    folder = Path(folder)
    with ck.written_whole(folder) as tmp:
        model.save_pretrained(str(tmp), selected_adapters=[POLICY])
        value_head.save(tmp / VALUE_DIR)
        torch.save({
            "step": step,
            "beta": beta,
            "data_position": step * cfg.batch_size,
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "rng": _rng_states(gens),
            "monitor": monitor.state_dict(),
            "config": to_dict(cfg),
            **(extra or {}),
        }, tmp / STATE_FILE)
    return folder


def _load_adapter_weights(model, folder: Path) -> None:
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    sub = folder / POLICY if (folder / POLICY).is_dir() else folder
    files = list(sub.glob("adapter_model.safetensors"))
    if not files:
        raise FileNotFoundError(f"{folder}: no policy adapter (adapter_model.safetensors) in this checkpoint")
    result = set_peft_model_state_dict(model, load_file(str(files[0])), adapter_name=POLICY)
    missing = [k for k in getattr(result, "unexpected_keys", []) if f".{POLICY}." in k]
    if missing:
        raise ValueError(f"{folder}: adapter weights do not fit this policy ({missing[:3]} …)")


# ======================================================================== the loop
def train_ppo(
    cfg: PPOConfig,
    prompts: list[Prompt],
    *,
    base: LoadedModel,
    reward: Any,
    output_dir: str | os.PathLike,
    sink: Sink,
    control: RunControl | None = None,
    resume_from: str | os.PathLike | None = None,
    gold: GoldFn | None = None,
) -> dict[str, Any]:
    """Run `cfg.total_updates` PPO steps; returns the last step's metrics (plus `steps`).

    `reward`: a `RewardModel` loaded onto this base, a reward run folder (loaded
    here onto the policy's PeftModel), or a `RewardFn` over token ids.
    `gold`: a GoldFn; when None and `cfg.gold_scorer` is set, it is resolved here.
    Steps are 1-based: step k is the k-th rollout and update; its rollout comes
    from the policy after k − 1 updates (step 1's from the reference policy).
    """
    _validate(cfg, prompts)
    d = current()
    if d.enabled:
        _validate_split(cfg, d)
    control = control or RunControl()
    output_dir = Path(output_dir)
    if d.is_main:
        output_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed)
    tokenizer = base.tokenizer

    # ---- models: one base, the policy adapter, the reward adapters, a value head
    if isinstance(reward, (str, os.PathLike)):
        model = prepare_policy(base, cfg)
        reward = load_reward(reward, model, tokenizer)
    rm_model = getattr(reward, "model", None) if hasattr(reward, "score_ids") else None
    model = prepare_policy(base, cfg, model=rm_model)
    score_fn, rm = reward_callable(reward)
    if gold is None and cfg.gold_scorer:
        gold = resolve_gold(cfg.gold_scorer, model, tokenizer)
    policy_params = _freeze_all_but_policy(model)
    body, lm_head = _body_and_head(model)
    device = next(body.parameters()).device
    if d.enabled and d.device.type == "cuda" and device != d.device:
        raise ValueError(f"process {d.rank}: the base model was loaded on {device}, not on this process's "
                         f"{d.device}; load it with device={str(d.device)!r}")
    value_head = _value_head(model, device)

    # N+: AdamW with eps 1e-5; linear learning-rate decay over the run (set once per update).
    # Two groups: the critic has its own learning rate (config.PPOConfig.value_learning_rate says why).
    optimizer = torch.optim.AdamW([{"params": policy_params, "lr": cfg.learning_rate},
                                   {"params": list(value_head.parameters()), "lr": cfg.value_learning_rate}],
                                  eps=cfg.adam_eps)
    total = cfg.total_updates
    # Warm-up: Adam's first steps are full-size whatever the gradient (config.PPOConfig.warmup_updates).
    scheduler = pm.LinearDecay(total, decay=cfg.lr_decay, warmup=cfg.warmup_updates)
    # N+: KL penalty coefficient β, fixed (0.05) or adaptive (Ziegler: target 6, horizon 10000).
    kl_ctl = pm.KLController(cfg.kl_coef, adaptive=cfg.adaptive_kl, target=cfg.kl_target, horizon=cfg.kl_horizon)
    seed = ck.rank_seed(cfg.seed, d.rank)  # rank 0 (and a single process) samples from cfg.seed's streams
    gens = {
        "sample": torch.Generator(device=device).manual_seed(seed),
        "reference": torch.Generator(device=device).manual_seed(seed + 1),
        "shuffle": torch.Generator().manual_seed(seed + 2),
    }
    monitor = HackingMonitor()
    query_ids = [prompt_ids(tokenizer, as_messages(p.messages)) for p in prompts]

    start = 1
    if d.enabled:  # the main process found the checkpoint; every rank resumes from the same one
        resume_from = d.broadcast(None if resume_from is None else str(resume_from))
    if resume_from is not None:
        state = _resume(Path(resume_from), model, value_head, optimizer, scheduler, gens, monitor)
        ck.restore_rank_rng(gens, state, d, lambda states: _set_rng_states(gens, states))
        start = int(state["step"]) + 1
        scheduler.extend(total, int(state["step"]))  # a longer run decays from where this one was
        kl_ctl.beta = float(state["beta"])
        if state.get("data_position") not in (None, state["step"] * cfg.batch_size):
            raise ValueError(f"{resume_from}: its data position does not match batch_size {cfg.batch_size}")
    if d.is_main:
        _write_manifest(output_dir, base, cfg)
    # The trainable forward of the update: DDP-wrapped across processes, the plain modules in one.
    policy = d.prepare(_PolicyValue(body, lm_head, value_head)) if d.enabled else None

    parts = _Parts(model=model, body=body, lm_head=lm_head, tokenizer=tokenizer, value_head=value_head,
                   optimizer=optimizer, scheduler=scheduler, kl_ctl=kl_ctl, gens=gens, monitor=monitor,
                   score_fn=score_fn, gold=gold, sink=sink, dist=d, policy=policy,
                   pack_rows=_can_pack(model, body, cfg.batch_size * (max(map(len, query_ids)) + cfg.max_new_tokens)),
                   pack_tol=1e-3 if lm_head.weight.dtype == torch.float32 and not base.four_bit else 5e-2)
    last: dict[str, float] = {}
    step = start - 1

    def checkpoint(at: int) -> None:
        extra = ck.rng_of_ranks(d, _rng_states(gens)) or None  # every rank's streams, across processes
        if not d.is_main:
            return
        path = save_checkpoint(output_dir / "checkpoints" / f"step-{at:06d}", model=model, value_head=value_head,
                               optimizer=optimizer, scheduler=scheduler, gens=gens, step=at, beta=kl_ctl.beta,
                               monitor=monitor, cfg=cfg, extra=extra)
        sink(Checkpoint(step=at, path=str(path), metrics=_headline(last)))

    saver = ck.Schedule(cfg.checkpoint_every, total, checkpoint, last=start - 1)
    try:
        for step in range(start, total + 1):
            d.check(control)
            last = _ppo_step(step, cfg, prompts, query_ids, parts)
            saver.after(step)
    except CancelledRun:
        saver.cancelled(step)
        raise
    # The trained policy in the standard PEFT layout (+ its value head), loadable by other tools.
    if d.is_main:
        model.save_pretrained(str(output_dir), selected_adapters=[POLICY])
        value_head.save(output_dir / POLICY / VALUE_DIR)
    final = {**last, "steps": float(step), "last_checkpoint": float(saver.last)}
    sink(Finished(metrics=final, output_dir=str(output_dir)))
    return final


def _can_pack(model: Any, body: torch.nn.Module, longest: int) -> bool:
    """The packed forward passes its own attention mask: fine for sdpa and eager attention, not for
    kernels that take no 4-D mask, nor for a sliding window shorter than a packed row (the mask bypasses it)."""
    impl = getattr(getattr(body, "config", None), "_attn_implementation", "sdpa")
    window = sliding_window(model)
    return impl in ("sdpa", "eager") and (window is None or window >= longest)


def _validate_split(cfg: PPOConfig, d: Dist) -> None:
    """Each process takes an equal share of every batch and minibatch."""
    for key in ("batch_size", "minibatch_size"):
        if getattr(cfg, key) % d.size:
            raise ValueError(f"{key} ({getattr(cfg, key)}) must be a multiple of the number of processes ({d.size}): "
                             "each process takes an equal share of it")


def _validate(cfg: PPOConfig, prompts: list[Prompt]) -> None:
    if not prompts:
        raise ValueError("PPO needs prompts: the prompt set is empty (add some with `tuilab data add`)")
    checks = [
        (cfg.batch_size >= 1, f"batch_size must be ≥ 1, got {cfg.batch_size}"),
        (cfg.minibatch_size >= 1, f"minibatch_size must be ≥ 1, got {cfg.minibatch_size}"),
        (cfg.batch_size % cfg.minibatch_size == 0,
         f"batch_size ({cfg.batch_size}) must be a multiple of minibatch_size ({cfg.minibatch_size})"),
        (cfg.max_new_tokens >= 1, f"max_new_tokens must be ≥ 1, got {cfg.max_new_tokens}"),
        (cfg.temperature > 0, f"temperature must be > 0 for PPO sampling, got {cfg.temperature}"),
        (cfg.total_updates >= 1, f"total_updates must be ≥ 1, got {cfg.total_updates}"),
        (cfg.ppo_epochs >= 1, f"ppo_epochs must be ≥ 1, got {cfg.ppo_epochs}"),
        (cfg.ensemble_mode in pm.ENSEMBLE_MODES,
         f"ensemble_mode must be one of {', '.join(pm.ENSEMBLE_MODES)}, got {cfg.ensemble_mode!r}"),
        (cfg.truncated in pm.TRUNCATED_MODES,
         f"truncated must be one of {', '.join(pm.TRUNCATED_MODES)}, got {cfg.truncated!r}"),
        (cfg.missing_eos_penalty >= 0,
         f"missing_eos_penalty is subtracted from a cut-off answer's score (TRL's convention) and must be ≥ 0, "
         f"got {cfg.missing_eos_penalty}; write {abs(cfg.missing_eos_penalty):g}"),
        (cfg.truncated != "replace" or cfg.truncated_score < 0,
         f"truncated_score replaces a cut-off answer's score and must be < 0, got {cfg.truncated_score}"),
    ]
    for ok, message in checks:
        if not ok:
            raise ValueError(message)


def _value_head(model, device):
    """The critic: a linear head on the policy's (detached) last hidden states, starting at V ≡ 0.

    Not the reward model's head: that head reads the *reward* adapter's hidden
    states, and on the policy's it predicted values around +1.9 while the
    normalised returns averaged +1.1 with a spread of ~1 (explained variance
    −2.3 at the first update), which the ±0.2 value clip then takes many
    updates to undo. Zero weights make the first values a constant 0 (explained
    variance 0, the mean of the normalised scores) and let the head learn
    from there.
    """
    from tuilab.modeling.heads import ScalarHead
    from tuilab.modeling.trunk import hidden_size_of

    head = ScalarHead(hidden_size_of(model)).to(device)
    with torch.no_grad():
        head.linear.weight.zero_()
        head.linear.bias.zero_()
    head.requires_grad_(True)
    return head


def _resume(folder: Path, model, value_head, optimizer, scheduler, gens, monitor) -> dict:
    from tuilab.modeling.heads import HEAD_FILE

    state_path = folder / STATE_FILE
    if not state_path.exists():
        raise FileNotFoundError(f"{folder}: not a PPO checkpoint (no {STATE_FILE})")
    state = torch.load(state_path, map_location="cpu", weights_only=False)
    _load_adapter_weights(model, folder)
    from safetensors.torch import load_file

    value_head.linear.load_state_dict(load_file(str(folder / VALUE_DIR / HEAD_FILE)))
    saved = state["optimizer"]
    if len(saved["param_groups"]) == 1:  # a checkpoint from before the critic had its own group
        saved = _split_groups(saved, optimizer)
    optimizer.load_state_dict(saved)
    sched = state["scheduler"]
    if "anchor_update" not in sched:  # a checkpoint from torch's LambdaLR: 1 − u/total
        sched = {"total": state["config"]["total_updates"], "decay": state["config"].get("lr_decay", True)}
    scheduler.load_state_dict(sched)
    _set_rng_states(gens, state["rng"])
    monitor.load_state_dict(state["monitor"])
    return state


def _split_groups(saved: dict, optimizer) -> dict:
    """An optimiser state saved with one group (policy + value head) → this optimiser's two groups."""
    (group,) = saved["param_groups"]
    ids = list(group["params"])
    n_policy = len(optimizer.param_groups[0]["params"])
    groups = []
    for ours, share in zip(optimizer.param_groups, (ids[:n_policy], ids[n_policy:]), strict=True):
        groups.append({**group, "lr": ours["lr"], "params": share})
    return {**saved, "param_groups": groups}


def _write_manifest(output_dir: Path, base: LoadedModel, cfg: PPOConfig) -> None:
    from tuilab.modeling.export import portable_base

    # `models/<name>` when the base lives in the lab, so a moved lab still finds it (`resolve_base`).
    data = {"format": "tuilab-ppo/1", "base_model": portable_base(base.path, output_dir), "adapter": POLICY,
            "reward_run": cfg.reward_run, "config": to_dict(cfg)}
    (output_dir / MANIFEST).write_text(json.dumps(data, indent=2) + "\n")


def _headline(m: dict[str, float]) -> dict[str, float]:
    keys = ("objective/scores", "objective/kl", "objective/rlhf_reward", "response/length_mean", "objective/gold")
    return {k: m[k] for k in keys if k in m}


# ======================================================================== one step
@dataclass
class _Parts:
    """What every update uses, built once by `train_ppo`."""

    model: Any  # the PeftModel: policy adapter, reward adapters, reference = adapters off
    body: torch.nn.Module  # its trunk
    lm_head: torch.nn.Module
    tokenizer: Any
    value_head: Any
    optimizer: torch.optim.Optimizer  # two groups: policy adapter, value head
    scheduler: pm.LinearDecay
    kl_ctl: pm.KLController
    gens: dict[str, torch.Generator]  # "sample", "reference", "shuffle"
    monitor: HackingMonitor
    score_fn: RewardFn
    gold: GoldFn | None
    sink: Sink
    dist: Dist = SINGLE
    policy: Any = None  # the DDP-wrapped _PolicyValue across processes; None in one
    pack_rows: bool = False  # forwards pack a batch's rows into one (`_forward_packed`; checked at first use)
    pack_tol: float = 1e-3  # how far its log-probs may be from a plain forward's
    pack_checked: bool = False


def _packing_agrees(parts: _Parts, ro: Rollout, step: int) -> bool:
    """The packed forward must give a plain forward's log-probs on this model; where not, say so."""
    rows = torch.arange(min(len(ro.tokens), 4), device=ro.mask.device)
    width = ro.mask.shape[1]
    with torch.no_grad():
        got = [pm.logprobs_from_logits(logits, ro.response_ids[rows, :w], 1.0)
               for logits, _, w in (_forward(parts.body, parts.lm_head, ro, rows, 1.0),
                                    _forward(parts.body, parts.lm_head, replace(ro, packed=False), rows, 1.0))]
    m = ro.mask[rows, :width]
    diff = float(((_pad_cols(got[0], width) - _pad_cols(got[1], width)).abs() * m).max())
    if diff <= parts.pack_tol:
        return True
    parts.sink(RunWarning(step=step, code="share_prefix_off", message=(
        f"On this model the forward that packs a batch's rows into one (their common prefix once) differs from "
        f"the plain one by {diff:.3g} in log-probability (> {parts.pack_tol:.3g}), so every row runs on its own, "
        "padded (slower, same result).")))
    return False


def _ppo_step(step: int, cfg: PPOConfig, prompts: list[Prompt], query_ids: list[list[int]],
              parts: _Parts) -> dict[str, float]:
    from tuilab.modeling.lora import adapters_disabled

    model, body, lm_head, tokenizer, value_head = (parts.model, parts.body, parts.lm_head, parts.tokenizer,
                                                   parts.value_head)
    optimizer, scheduler, kl_ctl, gens, monitor = (parts.optimizer, parts.scheduler, parts.kl_ctl, parts.gens,
                                                   parts.monitor)
    score_fn, gold, sink, dist, policy = parts.score_fn, parts.gold, parts.sink, parts.dist, parts.policy

    t_step = time.perf_counter()
    idx = dist.shard(batch_indices(len(prompts), cfg.batch_size, step, cfg.seed))  # this rank's prompts
    red = dist.sum if dist.enabled else None  # batch statistics over every rank's rows
    batch = [prompts[i] for i in idx]
    ids = [query_ids[i] for i in idx]
    B = len(batch)
    T = cfg.temperature

    # ---------------------------------------------------------------- rollout
    t0 = time.perf_counter()
    # Reference answers (Sample.ref_response, for the inspector) every `sample_every` steps, from their own stream.
    refs_due = cfg.sample_every > 0 and (step - 1) % cfg.sample_every == 0
    capture = _SampledHidden(body)
    try:
        ro, sampled_refs = _generate(model, tokenizer, ids, cfg, gens["sample"],
                                     reference=gens["reference"] if refs_due else None)
    finally:
        capture.close()
    gen_s = time.perf_counter() - t0
    n_gen = int(ro.mask.sum())
    if parts.pack_rows:
        ro.packed, ro.prefix = True, shared_start(ids, minimum=1)  # the chat template's system prompt, at least
        if not parts.pack_checked:
            parts.pack_checked = True
            parts.pack_rows = ro.packed = _packing_agrees(parts, ro, step)
    ref_texts: list[str | None] = list(sampled_refs) if sampled_refs is not None else [None] * B

    all_rows = torch.arange(B, device=ro.mask.device)
    mask = ro.mask
    with torch.no_grad():
        # Old log-probs and values from the sampler's own hidden states (equal to a fresh forward up to
        # KV-cache rounding; tested); a forward pass only if the capture does not line up.
        h = capture.assemble(ro.decoded_lengths, max(ro.decoded_lengths))
        capture.calls.clear()
        if h is not None:
            width = mask.shape[1]
            h = h[:B, :width]  # the policy's rows (reference rows, when any, follow them)
            logits = lm_head(h)
        else:
            logits, h, width = _forward(body, lm_head, ro, all_rows, T)
        lp, ent = pm.logprobs_and_entropy(logits, ro.response_ids[:, :width], T)
        old_logp = _pad_cols(lp, mask.shape[1])
        old_values = _pad_cols(value_head(h), mask.shape[1]) * mask
        token_entropy = pm.masked_mean(_pad_cols(ent, mask.shape[1]), mask, reduce=red)
        del logits, h, lp, ent
        t_ref = time.perf_counter()
        with adapters_disabled(model):  # the reference policy: same weights, adapters off
            ref_logits, _, _ = _forward(body, lm_head, ro, all_rows, T)
            ref_logp = _pad_cols(pm.logprobs_from_logits(ref_logits, ro.response_ids[:, :width], T), mask.shape[1])
            del ref_logits
        old_logp, ref_logp = old_logp * mask, ref_logp * mask
        ref_fwd_s = time.perf_counter() - t_ref

        # N+: the reward is read at the last real token of prompt + response + EOS (chat.scored_ids).
        t_rm = time.perf_counter()
        scored = [scored_ids(tokenizer, as_messages(p.messages), t) for p, t in zip(batch, ro.tokens, strict=True)]
        members = torch.as_tensor(score_fn(scored, ro.tokens, ro.texts), dtype=torch.float32, device=mask.device)
        if members.dim() == 1:
            members = members.unsqueeze(0)
        rm_mean = members.mean(0)
        reward_s = time.perf_counter() - t_rm
        score, spread = pm.combine_ensemble(members, cfg.ensemble_mode, cfg.ensemble_lambda)
        # N+: responses that never reach EOS lose score (ppo_math.score_truncated: subtract or replace).
        score = pm.score_truncated(score, ro.finished, cfg.truncated, penalty=cfg.missing_eos_penalty,
                                   constant=cfg.truncated_score)

        kl = pm.kl_estimators(old_logp, ref_logp)
        kl_k1, kl_k3 = kl.k1 * mask, kl.k3 * mask
        beta = kl_ctl.beta
        # N+: per-token KL penalty −β·(log π − log π_ref), score added at the last real token.
        rewards = pm.token_rewards(score, kl_k1, mask, beta)
        if cfg.whiten_rewards:
            rewards = pm.masked_whiten(rewards, mask, shift_mean=False, reduce=red)  # N+: reward whitening, no mean shift
        # N+: GAE with γ = 1, λ = 0.95 by default.
        adv, returns = pm.gae(rewards, old_values, mask, cfg.gamma, cfg.lam)
        adv = pm.masked_whiten(adv, mask, reduce=red)  # N+: advantage whitening
        ev = pm.explained_variance(old_values, returns, mask, reduce=red)
    gold_scores = [float(g) for g in gold(batch, ro.texts)] if gold is not None else None
    rollout_s = time.perf_counter() - t0

    # ---------------------------------------------------------------- update
    t2 = time.perf_counter()
    factor = scheduler.factor(step - 1)  # N+: linear LR decay, set once per update
    lr = cfg.learning_rate * factor
    policy_group, value_group = optimizer.param_groups
    policy_group["lr"], value_group["lr"] = lr, cfg.value_learning_rate * factor
    keys = ("pg", "vf", "clip", "vclip", "akl", "ratio", "ent", "gn_policy", "gn_value")
    stats: dict[str, float] = dict.fromkeys(keys, 0.0)
    first_ratio_dev = float("nan")
    n_minibatches = 0
    mb = cfg.minibatch_size // dist.size  # this rank's share of each minibatch
    per_micro = _rows_per_microbatch(ro, mask.device)
    policy_params, value_params = (group["params"] for group in optimizer.param_groups)
    for _ in range(cfg.ppo_epochs):
        perm = torch.randperm(B, generator=gens["shuffle"]).to(mask.device)
        for s in range(0, B, mb):
            rows = perm[s : s + mb]
            n_tok = dist.sum(mask[rows].sum()).clamp_min(1.0)  # the whole minibatch's tokens, every rank's
            optimizer.zero_grad(set_to_none=True)
            # Micro-batches accumulate the exact minibatch gradient (each term weighted by its token
            # share) with a fraction of the activation memory.
            for m0 in range(0, len(rows), per_micro):
                micro = rows[m0 : m0 + per_micro]
                last_micro = m0 + per_micro >= len(rows)
                # Across processes the gradients are averaged once per minibatch, in its last backward.
                with contextlib.nullcontext() if policy is None or last_micro else dist.no_sync(policy):
                    if policy is None:
                        logits, h, width = _forward(body, lm_head, ro, micro, T)
                        # The critic reads the trunk's features without moving them: its loss trains the value
                        # head only, so it can neither swamp nor steer the policy adapter's gradient.
                        values = value_head(h.detach())
                    else:
                        logits, values, width = policy(ro, micro, T)
                        h = None
                    m = mask[micro, :width]
                    share = m.sum() / n_tok
                    logp, ent = pm.logprobs_and_entropy(logits, ro.response_ids[micro, :width], T)
                    if n_minibatches == 0:  # before any update the ratio must be exactly 1
                        dev = float((((logp.detach() - old_logp[micro, :width]).abs()) * m).max())
                        first_ratio_dev = dev if math.isnan(first_ratio_dev) else max(first_ratio_dev, dev)
                    # N+: clipped surrogate objective (clip 0.2).
                    pl = pm.clipped_policy_loss(logp, old_logp[micro, :width], adv[micro, :width], m,
                                                cfg.clip_range)
                    # N+: clipped value loss, weighted by vf_coef (0.1).
                    vl, vclip = pm.clipped_value_loss(values, old_values[micro, :width], returns[micro, :width], m,
                                                      cfg.clip_range_value)
                    # DDP averages the ranks' gradients: × size makes it the sum of token-weighted terms.
                    ((pl.loss + cfg.vf_coef * vl) * (share * dist.size if dist.enabled else share)).backward()
                for k, v in (("pg", pl.loss), ("vf", vl), ("clip", pl.clipfrac), ("vclip", vclip),
                             ("akl", pl.approxkl), ("ratio", pl.ratio), ("ent", pm.masked_mean(ent, m))):
                    stats[k] += float(v.detach() * share)
                del logits, h, logp, values, pl, vl
            # N+: gradient clipping, each part on its own: one norm over both would let the critic's
            # gradient decide how far the policy may move.
            stats["gn_policy"] += float(torch.nn.utils.clip_grad_norm_(policy_params, cfg.max_grad_norm))
            stats["gn_value"] += float(torch.nn.utils.clip_grad_norm_(value_params, cfg.max_grad_norm))
            optimizer.step()
            n_minibatches += 1
    if dist.enabled:  # each rank summed its share of every minibatch's token-weighted terms
        shared = keys[:7]
        total = dist.sum(torch.tensor([stats[k] for k in shared], dtype=torch.float64, device=mask.device))
        stats.update(zip(shared, total.tolist(), strict=True))
        first_ratio_dev = float(dist.max(torch.tensor([first_ratio_dev], device=mask.device)))
    stats = {k: v / max(n_minibatches, 1) for k, v in stats.items()}
    update_s = time.perf_counter() - t2

    # ---------------------------------------------------------------- metrics, samples, diagnostics
    seq_kl = kl_k1.sum(1)
    kl3_rows, kl2_rows, ent_rows = kl_k3.sum(1), (kl.k2 * mask).sum(1), (-old_logp * mask).sum(1)
    tokens, texts, eos = ro.tokens, ro.texts, [bool(f) for f in ro.finished.tolist()]
    if dist.enabled:  # every rank's rows, in rank order (= the global batch's order), on every rank
        cols = dist.gather_rows(torch.stack([score, rm_mean, spread, seq_kl, kl3_rows, kl2_rows, ent_rows], 1))
        score, rm_mean, spread, seq_kl, kl3_rows, kl2_rows, ent_rows = cols.unbind(1)
        gathered = dist.gather_objects(list(zip(batch, tokens, texts, eos, ref_texts,
                                                gold_scores or [None] * B, strict=True)))
        batch, tokens, texts, eos, ref_texts, gold_list = (list(c) for c in zip(*gathered, strict=True))
        gold_scores = gold_list if gold_scores is not None else None
        B = len(batch)
    non_score = -beta * seq_kl
    lengths = [len(t) for t in tokens]
    spreads = spread.tolist() if members.shape[0] > 1 else None
    health = {"explained_variance": ev, "approx_kl": stats["akl"], "clipfrac": stats["clip"]}
    report = monitor.observe(step, scores=rm_mean.tolist(), lengths=lengths, eos=eos, tokens=tokens,
                             spreads=spreads, gold=gold_scores, kls=seq_kl.tolist(), health=health)
    new_beta = kl_ctl.update(float(seq_kl.mean()), B)
    values = {
        "objective/scores": float(score.mean()),
        "objective/scores_std": float(score.std(unbiased=False)),
        "objective/rm_score": float(rm_mean.mean()),
        "objective/kl": float(seq_kl.mean()),
        "objective/kl_k3": float(kl3_rows.mean()),
        "objective/kl_k2": float(kl2_rows.mean()),
        "objective/entropy": float(ent_rows.mean()),  # TRL's: sequence sum of −log π
        "objective/token_entropy": float(token_entropy),
        "objective/non_score_reward": float(non_score.mean()),
        "objective/rlhf_reward": float((score + non_score).mean()),
        "objective/beta": beta,
        "objective/beta_next": new_beta,
        "policy/clipfrac_avg": stats["clip"],
        "policy/approxkl_avg": stats["akl"],
        "policy/entropy_avg": stats["ent"],
        "loss/policy_avg": stats["pg"],
        "loss/value_avg": stats["vf"],
        "val/clipfrac_avg": stats["vclip"],
        "val/ratio": stats["ratio"],
        "val/explained_variance": ev,
        "policy/grad_norm": stats["gn_policy"],
        "val/grad_norm": stats["gn_value"],
        "policy/first_ratio_dev": first_ratio_dev,
        "val/value_mean": float(pm.masked_mean(old_values, mask, reduce=red)),
        "val/return_mean": float(pm.masked_mean(returns, mask, reduce=red)),
        "val/num_eos_tokens": float(sum(eos)),
        "response/length_mean": float(np.mean(lengths)),
        "response/length_max": float(max(lengths)),
        "response/eos_rate": float(np.mean(eos)),
        "lr": float(lr),
        "time/rollout_s": rollout_s,
        "time/generate_s": gen_s,  # the policy's rollouts, with the reference answers on the steps that have them
        "time/reference_forward_s": ref_fwd_s,
        "time/reward_s": reward_s,
        "time/update_s": update_s,
        "time/step_s": time.perf_counter() - t_step,
        "time/tokens_per_s": (n_gen / gen_s if gen_s > 0 else 0.0) * dist.size,
        **report.metrics,
    }
    if members.shape[0] > 1:
        values["ensemble/spread"] = float(spread.mean())
    if gold_scores is not None:
        values["objective/gold"] = float(np.mean(gold_scores))
    values = {k: v for k, v in values.items() if v is not None and math.isfinite(v)}

    if not dist.is_main:
        return values
    rows_out = [
        Sample(prompt=p.text, response=texts[i], score=float(rm_mean[i]), prompt_id=p.id,
                  ref_response=ref_texts[i], spread=float(spread[i]) if spreads is not None else None,
                  gold=gold_scores[i] if gold_scores is not None else None, kl=float(seq_kl[i]),
                  length=lengths[i], eos=eos[i], flags=report.flags[i])
        for i, p in enumerate(batch)
    ]
    sink(Samples(step=step, rows=rows_out))
    sink(Metrics(step=step, values=values, total_steps=cfg.total_updates))
    for code, message in report.warnings:
        sink(RunWarning(step=step, code=code, message=message))
    return values
