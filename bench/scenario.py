"""The length-hack scenario end to end, headless, timed: both rounds of the loop, or tuilab against TRL.

    python bench/scenario.py [--lab DIR] [--seed 0] [--threads 2] [--png scenario.png]
    python bench/scenario.py --peer trl [--trl-target .venv/trl-1.12]

Round 1 runs the README's commands in a fresh lab (import the prompts and the
pairs, `train rm`, `train ppo` with the shipped configs). Round 2 closes the
loop: `data mark-hacked RUN1 --where …` (the inspector's `h` for every match),
a second reward model on the original pairs plus those marks, and PPO again
with the same seed. Each command's wall time is printed; the tables are the
5-update means of each PPO run read back from the lab's database; the PNG
plots RM score, gold score and length against √KL for both rounds.

`--peer trl` runs TRL 1.12's PPOTrainer (installed with `pip install --no-deps
--target DIR trl==1.12.0 datasets dill multiprocess xxhash`, never a dependency of the lab) with the same
hyper-parameters against round 1's reward model, exported as a sequence
classifier (reward adapter merged, head and normalisation folded into the
score layer), on the same prompts; it prints updates-to-hack and wall time to
hack for both. "Hacked" = the first update whose 5-update means (the update
and the 4 before it) show length ≥ 1.5× the first 5 updates' and EOS rate < 0.5.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCEN = ROOT / "tuilab" / "data" / "scenarios" / "length_bias"
EX = ROOT / "examples" / "length_hack"
DEFAULT_MODEL = "smollm2-135m-instruct"
COLUMNS = (("objective/rm_score", "score"), ("response/length_mean", "length"), ("response/eos_rate", "eos"),
           ("objective/gold", "gold"), ("objective/kl", "kl"), ("val/explained_variance", "ev"),
           ("policy/approxkl_avg", "approx_kl"), ("policy/clipfrac_avg", "clipfrac"))
MARK_WHERE = "long"


def tuilab(lab: Path, *args: str, threads: int) -> tuple[dict, float]:
    """Run one `tuilab` command in the lab; (its JSON line on stdout, seconds)."""
    env = {**os.environ, "TUILAB_HOME": str(lab), "OMP_NUM_THREADS": str(threads), "PYTHONPATH": str(ROOT)}
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "tuilab", *args], env=env, cwd=ROOT, capture_output=True, text=True)
    secs = time.perf_counter() - t0
    if out.returncode != 0:
        sys.exit(f"`tuilab {' '.join(args)}` failed ({out.returncode}):\n{out.stderr[-3000:]}")
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("{")]
    return (json.loads(lines[-1]) if lines else {}), secs


def fresh_lab(path: Path | None) -> Path:
    lab = Path(path) if path else Path(tempfile.mkdtemp(prefix="tuilab-scenario-"))
    (lab / "models").mkdir(parents=True, exist_ok=True)
    src = ROOT / "models" / DEFAULT_MODEL
    if not (lab / "models" / DEFAULT_MODEL).exists():
        if not src.is_dir():
            sys.exit(f"{src}: the default model is not imported (run `tuilab models setup` in {ROOT})")
        (lab / "models" / DEFAULT_MODEL).symlink_to(src)
    return lab


def read_run(lab: Path, run_id: str) -> list[dict[str, float]]:
    """Per-update metrics of a run, in step order."""
    con = sqlite3.connect(f"file:{lab / 'db' / 'lab.db'}?mode=ro", uri=True)
    rows: dict[int, dict[str, float]] = {}
    for name, step, value in con.execute("SELECT name, step, value FROM metrics WHERE run_id = ?", (run_id,)):
        rows.setdefault(int(step), {})[name] = float(value)
    row = con.execute("SELECT final_metrics FROM runs WHERE id = ?", (run_id,)).fetchone()
    con.close()
    final = json.loads(row[0]) if row and row[0] else {}
    out = [rows[s] for s in sorted(rows)]
    if out:  # the run's warnings (the runner keeps them with the final metrics)
        out[0]["_warnings"] = [w.get("code") for w in final.get("warnings", [])]  # type: ignore[assignment]
    return out


def means(rows: list[dict], key: str, width: int = 5) -> list[float]:
    out = []
    for a in range(0, len(rows), width):
        vals = [r[key] for r in rows[a : a + width] if key in r and math.isfinite(r[key])]
        out.append(sum(vals) / len(vals) if vals else float("nan"))
    return out


def print_table(title: str, rows: list[dict]) -> None:
    print(f"\n{title}: 5-update means ({len(rows)} updates)")
    spans = [f"{a + 1}-{min(a + 5, len(rows))}" for a in range(0, len(rows), 5)]
    print(f"  {'':>10} " + " ".join(f"{s:>8}" for s in spans) + f" {'last 5':>8}")
    for key, label in COLUMNS:
        vals = means(rows, key) + [means(rows[-5:], key, 5)[0] if rows else float("nan")]
        print(f"  {label:>10} " + " ".join(f"{v:8.3f}" if math.isfinite(v) else f"{'–':>8}" for v in vals))


def hacked_at(lengths: list[float], eos: list[float], width: int = 5) -> int | None:
    """First 1-based update whose trailing 5-update means show length ≥ 1.5× the first five's and EOS < 0.5."""
    if len(lengths) < 2 * width:
        return None
    base = sum(lengths[:width]) / width
    for u in range(2 * width, len(lengths) + 1):
        ln = sum(lengths[u - width : u]) / width
        eo = sum(eos[u - width : u]) / width
        if ln >= 1.5 * base and eo < 0.5:
            return u
    return None


def verdict(rows: list[dict]) -> dict[str, object]:
    """The issue's checks on the last five updates against the first five."""
    first, last = rows[:5], rows[-5:]

    def m(rs, k):
        vals = [r[k] for r in rs if k in r]
        return sum(vals) / len(vals) if vals else float("nan")

    return {
        "score_up": m(last, "objective/rm_score") > m(first, "objective/rm_score"),
        "length_x": round(m(last, "response/length_mean") / m(first, "response/length_mean"), 2),
        "eos_last5": round(m(last, "response/eos_rate"), 2),
        "gold_down": m(last, "objective/gold") < m(first, "objective/gold"),
        "length_flag": "length_growth" in (rows[0].get("_warnings") or []) if rows else False,
    }


def binned(pts: list[tuple[float, float]], *, bins: int, lo: float, hi: float) -> list[tuple[float, float]]:
    """Mean (x, y) of the points in each of `bins` equal-width x bins over [lo, hi] (NaN for an empty bin)."""
    width = (hi - lo) / bins if hi > lo else 1.0
    out = []
    for b in range(bins):
        a, z = lo + b * width, lo + (b + 1) * width
        inside = [(x, y) for x, y in pts if a <= x < z or (b == bins - 1 and x == z)]
        if inside:
            out.append((sum(x for x, _ in inside) / len(inside), sum(y for _, y in inside) / len(inside)))
        else:
            out.append(((a + z) / 2, float("nan")))
    return out


# ------------------------------------------------------------------ the PNG (Pillow only)
def plot(rounds: dict[str, list[dict]], path: Path) -> None:
    from PIL import Image, ImageDraw

    panels = (("objective/rm_score", "RM score"), ("objective/gold", "gold"), ("response/length_mean", "length"))
    colours = ("#1f77b4", "#d62728", "#2ca02c")
    W, H, pad = 420, 300, 40
    img = Image.new("RGB", (W * len(panels), H + 30), "white")
    d = ImageDraw.Draw(img)
    for p, (key, label) in enumerate(panels):
        x0 = p * W
        series = []
        for rows in rounds.values():
            pts = [(math.sqrt(max(r.get("objective/kl", 0.0), 0.0)), r[key]) for r in rows if key in r]
            series.append(pts)
        xs = [x for s in series for x, _ in s] or [0, 1]
        ys = [y for s in series for _, y in s] or [0, 1]
        xl, xh = min(xs), max(xs) if max(xs) > min(xs) else min(xs) + 1
        yl, yh = min(ys), max(ys) if max(ys) > min(ys) else min(ys) + 1

        def at(x, y, x0=x0, xl=xl, xh=xh, yl=yl, yh=yh):
            return (x0 + pad + (x - xl) / (xh - xl) * (W - 2 * pad), H - pad + 10 - (y - yl) / (yh - yl) * (H - 2 * pad))

        d.rectangle([x0 + pad, 10 + pad - pad, x0 + W - pad, H - pad + 10], outline="black")
        d.text((x0 + W // 2 - 30, 2), f"{label} vs sqrt(KL)", fill="black")
        d.text((x0 + pad, H - pad + 14), f"{xl:.2f}", fill="black")
        d.text((x0 + W - pad - 30, H - pad + 14), f"{xh:.2f}", fill="black")
        d.text((x0 + 2, 12), f"{yh:.2f}", fill="black")
        d.text((x0 + 2, H - pad), f"{yl:.2f}", fill="black")
        for c, (name, pts) in enumerate(zip(rounds, series, strict=True)):
            # KL does not grow monotonically with the update, so the line joins the means of √KL bins
            # (left to right), not the updates in order; the dots are the updates.
            trend = [(x, y) for x, y in binned(pts, bins=6, lo=xl, hi=xh) if math.isfinite(y)]
            if len(trend) > 1:
                d.line([at(x, y) for x, y in trend], fill=colours[c % 3], width=2)
            for x, y in pts:
                cx, cy = at(x, y)
                d.ellipse([cx - 2, cy - 2, cx + 2, cy + 2], fill=colours[c % 3])
            d.text((x0 + pad + 5 + 90 * c, H + 12), name, fill=colours[c % 3])
    img.save(path)


# ------------------------------------------------------------------ main
def run_rounds(args: argparse.Namespace) -> None:
    lab = fresh_lab(args.lab)
    t = args.threads
    timings: list[tuple[str, float]] = []
    seed = ["--set", f"seed={args.seed}"]
    _, s = tuilab(lab, "data", "import", str(SCEN / "prompts.jsonl"), threads=t)
    timings.append(("import prompts", s))
    _, s = tuilab(lab, "data", "import", str(SCEN / "preferences.jsonl"), threads=t)
    timings.append(("import pairs", s))
    rm1, s = tuilab(lab, "train", "rm", "--quiet", "--config", str(EX / "rm.toml"), *seed, threads=t)
    timings.append(("train rm (round 1)", s))
    ppo1, s = tuilab(lab, "train", "ppo", "--quiet", "--config", str(EX / "ppo.toml"), *seed,
                     "--set", f"reward_run={rm1['run_id']}", threads=t)
    timings.append(("train ppo (round 1)", s))
    rounds = {"round 1": read_run(lab, ppo1["run_id"])}
    print(f"lab {lab}; rm accuracy {rm1.get('eval/accuracy')}, length corr {rm1.get('eval/length_corr')}")
    if args.rounds > 1:
        mark, s = tuilab(lab, "data", "mark-hacked", ppo1["run_id"], "--where", args.where, threads=t)
        timings.append(("mark-hacked", s))
        print(f"marked hacked: {mark}")
        rm2, s = tuilab(lab, "train", "rm", "--quiet", "--config", str(EX / "rm.toml"), *seed,
                        "--name", "length-hack-rm-round2", threads=t)
        timings.append(("train rm (round 2)", s))
        print(f"round 2 rm accuracy {rm2.get('eval/accuracy')}, length corr {rm2.get('eval/length_corr')}")
        ppo2, s = tuilab(lab, "train", "ppo", "--quiet", "--config", str(EX / "ppo.toml"), *seed,
                         "--set", f"reward_run={rm2['run_id']}", "--name", "length-hack-ppo-round2", threads=t)
        timings.append(("train ppo (round 2)", s))
        rounds["round 2"] = read_run(lab, ppo2["run_id"])
    print("\nwall time per command (s):")
    for name, secs in timings:
        print(f"  {name:<22} {secs:7.1f}")
    first = sum(s for n, s in timings if "round 2" not in n and n != "mark-hacked")
    print(f"  {'round 1 end to end':<22} {first:7.1f}")
    for name, rows in rounds.items():
        print_table(name, rows)
        print(f"  checks (last 5 vs first 5): {verdict(rows)}")
    if len(rounds) > 1:
        compare_at_kl(rounds)
    if args.png:
        plot(rounds, Path(args.png))
        print(f"\nwrote {args.png}")


def compare_at_kl(rounds: dict[str, list[dict]]) -> None:
    """Gold and length of both rounds at the same √KL: per-update points averaged in four √KL bins over the
    range both rounds reach (single updates at batch 8 are noisy; a bin holds several)."""
    def pts(rows, key):
        return [(math.sqrt(max(r.get("objective/kl", 0.0), 0.0)), r[key]) for r in rows if key in r]

    r1, r2 = rounds["round 1"], rounds["round 2"]
    hi = min(max(math.sqrt(max(r.get("objective/kl", 0.0), 0.0)) for r in rs) for rs in (r1, r2))
    print(f"\nat the same sqrt(KL) (0 to {hi:.2f}, the range both rounds reach; mean of the updates in each bin):")
    print(f"  {'sqrt(KL) bin':>12} {'n r1':>4} {'n r2':>4} {'gold r1':>8} {'gold r2':>8} {'len r1':>8} {'len r2':>8}")
    cols = [binned(pts(rs, k), bins=4, lo=0.0, hi=hi) for rs in (r1, r2)
            for k in ("objective/gold", "response/length_mean")]
    counts = [[len([1 for x, _ in pts(rs, "response/length_mean") if a <= x < a + hi / 4 or (b == 3 and x == hi)])
               for b, a in enumerate(hi * f / 4 for f in range(4))] for rs in (r1, r2)]
    for b in range(4):
        lo_b, hi_b = hi * b / 4, hi * (b + 1) / 4
        g1, l1, g2, l2 = (c[b][1] for c in cols)
        print(f"  {lo_b:5.2f}–{hi_b:5.2f} {counts[0][b]:4d} {counts[1][b]:4d} {g1:8.3f} {g2:8.3f} {l1:8.1f} {l2:8.1f}")
    # A bin holds 0–4 updates of 8 answers each, and one update's gold moves by about ±0.3 with the batch's
    # prompts: a straight line through all of a round's updates uses every one of them.
    grid = [hi * f / 4 for f in range(5)]
    print(f"\n  least-squares line through each round's updates, at sqrt(KL) = {', '.join(f'{x:.2f}' for x in grid)}:")
    for key, label in (("objective/gold", "gold"), ("response/length_mean", "length")):
        for name, rs in (("r1", r1), ("r2", r2)):
            line = fit_line(pts(rs, key))
            vals = [line[0] + line[1] * x for x in grid] if line else [float("nan")] * len(grid)
            print(f"  {label:>6} {name} " + " ".join(f"{v:8.3f}" for v in vals))


def fit_line(points: list[tuple[float, float]]) -> tuple[float, float] | None:
    """(intercept, slope) of the least-squares line through (x, y) points; None with < 2 distinct x."""
    n = len(points)
    if n < 2:
        return None
    mx, my = sum(x for x, _ in points) / n, sum(y for _, y in points) / n
    sxx = sum((x - mx) ** 2 for x, _ in points)
    if sxx == 0:
        return None
    slope = sum((x - mx) * (y - my) for x, y in points) / sxx
    return my - slope * mx, slope


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lab", type=Path, help="lab folder (default: a fresh temporary one)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=2, choices=(1, 2))
    ap.add_argument("--where", default=MARK_WHERE, help=f"what round 2 marks hacked (default {MARK_WHERE!r})")
    ap.add_argument("--png", default="scenario.png")
    ap.add_argument("--peer", choices=("trl",), help="run TRL's PPO against round 1's reward model instead of round 2")
    ap.add_argument("--trl-target", type=Path, default=ROOT / ".venv" / "trl-1.12")
    args = ap.parse_args()
    if args.peer == "trl":
        sys.path.insert(0, str(ROOT))
        from bench.scenario_trl import run_peer  # the peer only when asked

        run_peer(args)
    else:
        run_rounds(args)


if __name__ == "__main__":
    main()
