"""Reward-hacking signals and overoptimization fits: pure functions over numbers and texts (numpy only).

- `stats`: Pearson / Spearman / slope that say None instead of NaN.
- `repetition`: distinct-n across a batch, repeated n-grams within a response.
- `flags`: per-sample flags ("long", "repetitive", "no_eos", "uncertain", "overrated") with `FLAG_HELP`.
- `monitor`: `HackingMonitor`, the run-level warnings (length bias, length growth, repetition,
  EOS rate falling, ensemble spread rising, score up while gold falls).
- `overoptimization`: Gao et al.'s gold ≈ d·(α − β·log d) fit, d = √KL.
"""
