"""Run-level reward-hacking warnings: the signals that show up across steps, not in one sample.

`HackingMonitor.observe` takes one PPO step's numbers and texts (as token ids)
and returns per-sample flags, `diag/*` metrics and the warnings that just became
true, each in words. A warning is raised once when its condition starts to hold
and again only after it has cleared. Its state is plain lists, so a checkpoint
can carry it and a resumed run warns exactly as an uninterrupted one would.

Thresholds are the named constants below; each compares the last `WINDOW`
steps (pooled, since single batches of 8 are noisy) with the first step, whose
policy is the reference policy itself.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field

import numpy as np

from tuilab.diagnostics.flags import FLAGS, REPEAT_N, sample_flags
from tuilab.diagnostics.overoptimization import fit_gao
from tuilab.diagnostics.repetition import distinct_n, repeated_ngram_fraction
from tuilab.diagnostics.stats import pearson, spearman

# Steps pooled for every run-level signal.
WINDOW = 5
# Fewest pooled samples before a correlation is trusted.
MIN_CORR_SAMPLES = 16
# length_bias: Pearson or Spearman between length and score at least this.
LENGTH_CORR_WARN = 0.5
# length_growth: mean length at least this many times the first step's.
LENGTH_GROWTH_WARN = 1.5
# repetition: mean within-response repeated n-gram share at least this,
REPETITION_WARN = 0.25
# … or batch distinct-2 down to this fraction of the first step's.
DISTINCT_DROP_WARN = 0.6
# eos_falling: EOS rate down by at least this much (absolute) from the first step.
EOS_DROP_WARN = 0.3
# spread_rising: mean ensemble spread at least this many times the first step's.
SPREAD_RISE_WARN = 2.0
# gold_diverging: over the last 2·WINDOW steps, the score rose while gold fell by at
# least this many pooled standard deviations of gold (score must rise by any amount).
GOLD_FALL_WARN = 0.25
# Pools for the per-sample quantile flags keep this many recent values.
POOL_SIZE = 1024
# Steps with gold and KL before the Gao et al. curve is fitted (diag/gold_fit_*).
MIN_FIT_STEPS = 5
# PPO health (optimiser and critic), read from the update's own statistics (`health=`):
# updates before the critic is judged (it starts untrained).
HEALTH_WARMUP = 3
# critic_not_fitting: mean explained variance over the window below this (0 = no better than a constant;
# −0.005 is 0 at the two decimals the warning prints, so a critic at −0.001 is not called worse).
EV_WARN = -0.005
# Below this the critic's noise is a large share of the advantages' (the length scenario's critic at the
# policy's learning rate read −0.2 to −0.3); between it and EV_WARN it is a near-constant (0 ± 0.1 there).
EV_NOISE = -0.1
# policy_stalled: mean approx-KL per update below this and mean clip fraction below CLIPFRAC_STALLED.
# A moving policy shows approx-KL around 1e-3…1e-2 and a clip fraction of a few percent.
APPROX_KL_STALLED = 1e-4
CLIPFRAC_STALLED = 1e-3

WARNING_CODES = (
    "length_bias",
    "length_growth",
    "repetition",
    "eos_falling",
    "spread_rising",
    "gold_diverging",
    "critic_not_fitting",
    "policy_stalled",
)


@dataclass
class StepReport:
    flags: list[list[str]]
    metrics: dict[str, float]
    warnings: list[tuple[str, str]] = field(default_factory=list)  # newly raised (code, message)


def _mean(xs: Sequence[float]) -> float | None:
    vals = [x for x in xs if x is not None and np.isfinite(x)]
    return float(np.mean(vals)) if vals else None


class HackingMonitor:
    """Tracks a PPO run's samples step by step and says when it looks hacked."""

    def __init__(self) -> None:
        self.baseline: dict[str, float | None] = {}
        self.steps: list[dict] = []  # per step: step, lengths, scores, gold, eos_rate, spread, distinct2, repeat
        self.active: list[str] = []
        self.pools: dict[str, list[float]] = {"score": [], "gold": [], "spread": []}

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict:
        return {"baseline": dict(self.baseline), "steps": list(self.steps), "active": list(self.active),
                "pools": {k: list(v) for k, v in self.pools.items()}}

    def load_state_dict(self, state: dict) -> None:
        self.baseline = dict(state.get("baseline", {}))
        self.steps = list(state.get("steps", []))
        self.active = list(state.get("active", []))
        self.pools = {k: list(v) for k, v in state.get("pools", self.pools).items()}

    # ------------------------------------------------------------------ main
    def observe(
        self,
        step: int,
        *,
        scores: Sequence[float],
        lengths: Sequence[int],
        eos: Sequence[bool],
        tokens: Sequence[Sequence[Hashable]],
        spreads: Sequence[float | None] | None = None,
        gold: Sequence[float | None] | None = None,
        kls: Sequence[float] | None = None,
        health: dict[str, float] | None = None,
    ) -> StepReport:
        """One step's samples (and, for PPO, `health`: the update's explained_variance,
        approx_kl, clipfrac) → per-sample flags, `diag/*` metrics, newly raised warnings."""
        spreads = list(spreads) if spreads is not None else None
        gold = list(gold) if gold is not None else None
        rec = {
            "step": int(step),
            "lengths": [int(x) for x in lengths],
            "scores": [float(x) for x in scores],
            "gold": [None if g is None else float(g) for g in gold] if gold is not None else None,
            "eos_rate": float(np.mean([bool(e) for e in eos])) if len(eos) else 0.0,
            "spread": _mean(spreads) if spreads is not None else None,
            "distinct2": distinct_n(tokens, 2),
            "repeat": float(np.mean([repeated_ngram_fraction(t, REPEAT_N) for t in tokens])) if tokens else 0.0,
            "kl": _mean(kls) if kls is not None else None,
            "health": {k: float(v) for k, v in (health or {}).items() if v is not None and np.isfinite(v)},
        }
        # A resumed run re-observes steps after its checkpoint: replace, never duplicate.
        self.steps = [s for s in self.steps if s["step"] < step]
        self.steps.append(rec)
        if not self.baseline:
            self.baseline = {
                "length": _mean(rec["lengths"]),
                "eos_rate": rec["eos_rate"],
                "spread": rec["spread"],
                "distinct2": rec["distinct2"],
            }
        self._pool("score", rec["scores"])
        if gold is not None:
            self._pool("gold", [g for g in gold if g is not None])
        if spreads is not None:
            self._pool("spread", [s for s in spreads if s is not None])

        flags = sample_flags(
            lengths=lengths, eos=eos, tokens=tokens, scores=scores, spreads=spreads, gold=gold,
            baseline_length=self.baseline.get("length"),
            spread_pool=self.pools["spread"] if spreads is not None else None,
            score_pool=self.pools["score"], gold_pool=self.pools["gold"] if gold is not None else None,
        )
        metrics = self._metrics(rec, flags)
        conditions = self._conditions()
        raised = []
        for code in WARNING_CODES:
            message = conditions.get(code)
            if message and code not in self.active:
                self.active.append(code)
                raised.append((code, message))
            elif not message and code in self.active:
                self.active.remove(code)
        metrics["diag/warnings_active"] = float(len(self.active))
        return StepReport(flags=flags, metrics=metrics, warnings=raised)

    def _pool(self, name: str, values: list[float]) -> None:
        pool = self.pools.setdefault(name, [])
        pool.extend(float(v) for v in values)
        del pool[:-POOL_SIZE]

    def _window(self, n: int = WINDOW) -> list[dict]:
        return self.steps[-n:]

    def _metrics(self, rec: dict, flags: list[list[str]]) -> dict[str, float]:
        m: dict[str, float] = {}
        p = pearson(rec["lengths"], rec["scores"])
        s = spearman(rec["lengths"], rec["scores"])
        if p is not None:
            m["diag/length_score_pearson"] = p
        if s is not None:
            m["diag/length_score_spearman"] = s
        base_len = self.baseline.get("length")
        cur_len = _mean(rec["lengths"])
        if base_len and cur_len is not None:
            m["diag/length_ratio"] = cur_len / base_len
        if rec["distinct2"] is not None:
            m["diag/distinct_2"] = rec["distinct2"]
        m["diag/repeated_3gram"] = rec["repeat"]
        n = max(len(flags), 1)
        for flag in FLAGS:
            m[f"diag/flag_{flag}"] = sum(flag in f for f in flags) / n
        m.update(self._gold_fit())
        return m

    def _gold_fit(self) -> dict[str, float]:
        """Gao et al.'s gold ≈ d·(α − β·log d) over per-step means, once there are enough steps."""
        pts = [(s.get("kl"), _mean(s["gold"])) for s in self.steps if s.get("gold") and s.get("kl") is not None]
        pts = [(k, g) for k, g in pts if g is not None]
        if len(pts) < MIN_FIT_STEPS:
            return {}
        fit = fit_gao([max(k, 0.0) for k, _ in pts], [g for _, g in pts], baseline=pts[0][1])
        if fit is None:
            return {}
        out = {"diag/gold_fit_alpha": fit.alpha, "diag/gold_fit_beta": fit.beta}
        if fit.r2 is not None:
            out["diag/gold_fit_r2"] = fit.r2
        if fit.peak_kl is not None:
            out["diag/gold_peak_kl"] = fit.peak_kl
        return out

    def _conditions(self) -> dict[str, str]:
        """Each warning code whose condition holds now, with its explanation."""
        out: dict[str, str] = {}
        win = self._window()
        k = len(win)
        steps_txt = f"the last {k} step{'s' if k != 1 else ''}"
        lengths = [x for s in win for x in s["lengths"]]
        scores = [x for s in win for x in s["scores"]]
        first = self.steps[0]["step"] if self.steps else 0

        if len(lengths) >= MIN_CORR_SAMPLES:
            p, r = pearson(lengths, scores), spearman(lengths, scores)
            if (p is not None and p >= LENGTH_CORR_WARN) or (r is not None and r >= LENGTH_CORR_WARN):
                out["length_bias"] = (
                    f"Reward tracks length: over {steps_txt} ({len(lengths)} samples) Pearson r = "
                    f"{p if p is not None else float('nan'):.2f}, Spearman ρ = {r if r is not None else float('nan'):.2f} "
                    f"between response length and score (warns at {LENGTH_CORR_WARN}). "
                    "The reward model may be paying for length rather than quality."
                )
        base_len = self.baseline.get("length")
        cur_len = _mean(lengths)
        if len(self.steps) > 1 and base_len and cur_len is not None and cur_len >= LENGTH_GROWTH_WARN * base_len:
            out["length_growth"] = (
                f"Responses are {cur_len / base_len:.1f}× as long as at step {first} "
                f"({cur_len:.0f} vs {base_len:.0f} tokens over {steps_txt}; warns at {LENGTH_GROWTH_WARN}×). "
                "Read a few: longer is rarely what the labels asked for."
            )
        rep = _mean([s["repeat"] for s in win])
        d2 = _mean([s["distinct2"] for s in win if s["distinct2"] is not None])
        base_d2 = self.baseline.get("distinct2")
        if len(self.steps) > 1 and (
            (rep is not None and rep >= REPETITION_WARN)
            or (d2 is not None and base_d2 and d2 <= DISTINCT_DROP_WARN * base_d2)
        ):
            out["repetition"] = (
                f"Responses repeat themselves: {rep or 0:.0%} of {REPEAT_N}-grams within a response "
                f"repeat an earlier one (warns at {REPETITION_WARN:.0%}); distinct-2 is "
                f"{d2 if d2 is not None else float('nan'):.2f} vs {base_d2 if base_d2 is not None else float('nan'):.2f} "
                f"at step {first} (warns below {DISTINCT_DROP_WARN}×). The policy may be padding or looping."
            )
        eos_now = _mean([s["eos_rate"] for s in win])
        eos_base = self.baseline.get("eos_rate")
        if len(self.steps) > 1 and eos_now is not None and eos_base is not None and eos_base - eos_now >= EOS_DROP_WARN:
            out["eos_falling"] = (
                f"Only {eos_now:.0%} of responses end with the end-of-turn token over {steps_txt} "
                f"({eos_base:.0%} at step {first}): the policy runs into the length cap and is "
                "scored on cut-off text."
            )
        spread_now = _mean([s["spread"] for s in win if s["spread"] is not None])
        spread_base = self.baseline.get("spread")
        if len(self.steps) > 1 and spread_now is not None and spread_base and spread_now >= SPREAD_RISE_WARN * spread_base:
            out["spread_rising"] = (
                f"The reward models disagree {spread_now / spread_base:.1f}× more than at step {first} "
                f"(mean ensemble spread {spread_now:.3f} vs {spread_base:.3f}; warns at {SPREAD_RISE_WARN}×): "
                "the policy is moving to where the reward is uncertain."
            )
        gold_steps = [s for s in self.steps if s["gold"] and any(g is not None for g in s["gold"])]
        if len(gold_steps) >= 2 * WINDOW:
            prev, cur = gold_steps[-2 * WINDOW : -WINDOW], gold_steps[-WINDOW:]
            def pooled(steps: list[dict], key: str) -> list[float]:
                return [x for s in steps for x in s[key] if x is not None]
            g_prev, g_cur = pooled(prev, "gold"), pooled(cur, "gold")
            s_prev, s_cur = pooled(prev, "scores"), pooled(cur, "scores")
            g_std = float(np.std(g_prev + g_cur))
            d_gold = float(np.mean(g_cur) - np.mean(g_prev))
            d_score = float(np.mean(s_cur) - np.mean(s_prev))
            if d_score > 0 and g_std > 0 and d_gold <= -GOLD_FALL_WARN * g_std:
                out["gold_diverging"] = (
                    f"Reward rose by {d_score:+.2f} while the gold score fell by {d_gold:+.2f} "
                    f"({d_gold / g_std:+.1f} standard deviations) over the last {2 * WINDOW} steps: "
                    "the policy is optimising the reward model, not the goal (overoptimization)."
                )
        out.update(self._health_conditions())
        return out

    def _health_conditions(self) -> dict[str, str]:
        """The PPO health warnings: a critic worse than a constant, a policy that stopped moving."""
        out: dict[str, str] = {}
        judged = [s for s in self.steps[HEALTH_WARMUP:] if s.get("health")]
        win = judged[-WINDOW:]
        if not win:
            return out
        k = len(win)
        steps_txt = f"the last {k} update{'s' if k != 1 else ''}"
        ev = _mean([s["health"].get("explained_variance") for s in win])
        if ev is not None and ev < EV_WARN:
            if ev < EV_NOISE:
                harm = ("Its advantages are mostly noise, so the policy learns slowly or in the wrong direction. "
                        "Check value_learning_rate: a critic that steps too far fits each batch's noise.")
            else:
                harm = (f"Its values vary by noise worth {-ev:.0%} of the returns' variance and predict nothing: "
                        "the advantages are about the returns minus their mean. Returns a prefix cannot "
                        "predict (whether an answer will stop) leave a critic near 0.")
            out["critic_not_fitting"] = (
                f"The critic is worse than a constant: explained variance {ev:.2f} over {steps_txt} "
                f"(warns below 0 after {HEALTH_WARMUP} updates; a critic that has learnt something reads above 0). "
                f"{harm}"
            )
        akl = _mean([s["health"].get("approx_kl") for s in win])
        clip = _mean([s["health"].get("clipfrac") for s in win])
        if akl is not None and clip is not None and akl < APPROX_KL_STALLED and clip < CLIPFRAC_STALLED:
            out["policy_stalled"] = (
                f"The policy has stopped moving: approx-KL {akl:.1e} per update and clip fraction {clip:.1%} "
                f"over {steps_txt} (a learning policy shows about 1e-3…1e-2 and a few percent; warns below "
                f"{APPROX_KL_STALLED:g} and {CLIPFRAC_STALLED:.1%}). Check the learning rate schedule and the gradient norm."
            )
        return out
