"""Crash safety, measured: SIGKILL the labeling app and a PPO job at random moments, then check.

    python bench/crash_safety.py [--label-kills 20] [--ppo-kills 5] [--seed 0] [--keep DIR]

Uses a tiny random chat model (tests/tiny.py: 2 layers, 32 hidden, SmolLM2's
tokenizer conventions) so each round takes seconds; the code paths are the
real ones (model → feeder thread → generations table → label screen →
`record_comparison`; `tuilab train ppo` → runner → checkpoints → `--resume`).

Labeling: the real App runs under Textual's Pilot in a child process (forked
from this one after the heavy imports, so a round does not pay them) that
presses decision keys as fast as pairs arrive and prints each decision the
moment the screen shows it done (the status line's reveal). The parent kills
the child with SIGKILL at a random moment (uniform over 0-5 s after its first
decision), then, with a fresh connection, checks that every decision shown
is in the database with both its generations, and that `PRAGMA quick_check`
passes. The next round labels on in the same database.

PPO: one run with a checkpoint every update, killed with SIGKILL at a random
moment (0-4 s after each process's first checkpoint) `--ppo-kills` times, each time resumed with `tuilab train ppo --resume`;
then resumed to the end. Checked: each resume starts right after the newest
checkpoint (its first checkpoint is newest + 1), the finished run has metrics
for every step 1..N with no gap, one checkpoint row per step, the same number
of samples at every step (no duplicates from a replayed step), and the
database passes `quick_check` after every kill.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------- the labeling child


async def _label_child(lab: str, model: str, seed: int) -> None:
    from tuilab.config import LabPaths
    from tuilab.labeling.candidates import SourceSpec
    from tuilab.tui.app import TuilabApp

    rng = random.Random(seed)
    # Short answers: more decisions per second, so more kills land between two of them.
    app = TuilabApp(LabPaths(Path(lab)), model=model, seed=seed, queue_size=2,
                    spec=SourceSpec(max_new_tokens=12))
    async with app.run_test(size=(100, 30)) as pilot:
        print(json.dumps({"event": "started"}), flush=True)
        while True:
            screen = app.screen
            if getattr(screen, "current", None) is None:
                await pilot.pause(0.01)
                continue
            before = len(screen.history)
            await pilot.press(rng.choice(["1", "2", "t", "b", "s", "exclamation_mark", "left", "right"]))
            if len(screen.history) > before:
                done = screen.history[-1]
                print(json.dumps({"event": "shown", "cid": done.comparison_id, "left": done.pair.left_id,
                                  "right": done.pair.right_id, "decision": done.decision}), flush=True)


def _preload() -> None:
    """Import the app's heavy modules once in the parent: each forked child starts warm."""
    import textual.app  # noqa: F401
    import torch  # noqa: F401
    import transformers  # noqa: F401

    import tuilab.labeling.candidates  # noqa: F401
    import tuilab.tui.app  # noqa: F401


def _fork_child(lab: Path, model: Path, seed: int, log: Path) -> tuple[int, int]:
    """(pid, read end of its stdout): a labeling child forked from this warm process."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: stdout into the pipe, stderr silenced, then label until killed
        try:
            os.close(read_fd)
            os.dup2(write_fd, 1)
            err = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.dup2(err, 2)
            sys.stdout = os.fdopen(1, "w", buffering=1)
            import asyncio

            asyncio.run(_label_child(str(lab), str(model), seed))
        finally:
            os._exit(0)
    os.close(write_fd)
    return pid, read_fd


def _read_until(fd: int, buf: bytearray, deadline: float, stop_at_first_shown: bool) -> bool:
    """Read the child's lines into `buf` until the deadline (or its first decision); False on EOF."""
    import select

    while True:
        if stop_at_first_shown and b'"shown"' in buf:
            return True
        left = deadline - time.monotonic()
        if left <= 0:
            return True
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            chunk = os.read(fd, 65536)
            if not chunk:
                return False
            buf += chunk


def quick_check(db: Path) -> str:
    conn = sqlite3.connect(db)
    try:
        return conn.execute("PRAGMA quick_check").fetchone()[0]
    finally:
        conn.close()


def label_round(lab: Path, model: Path, seed: int, rng: random.Random) -> dict:
    log = lab.parent / f"label-child-{seed}.stderr"
    pid, fd = _fork_child(lab, model, seed, log)
    buf = bytearray()
    alive = _read_until(fd, buf, time.monotonic() + 300, stop_at_first_shown=True)
    if b'"shown"' not in buf:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
        raise RuntimeError(f"the labeling child {'showed no decision within 300 s' if alive else 'died'}; "
                           f"its stderr ends:\n{tail}")
    delay = rng.uniform(0.0, 5.0)  # counted from the first decision shown: the kill lands mid-labeling
    if alive:
        _read_until(fd, buf, time.monotonic() + delay, stop_at_first_shown=False)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    while chunk := os.read(fd, 65536):  # what it printed before it died
        buf += chunk
    os.close(fd)
    shown = []
    for line in buf.decode(errors="replace").splitlines():
        try:
            shown.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # a line cut by the kill was never shown in full
    decisions = [m for m in shown if m.get("event") == "shown"]
    db = lab / "db" / "lab.db"
    check = quick_check(db)
    conn = sqlite3.connect(db)
    lost = []
    try:
        for d in decisions:
            row = conn.execute(
                "SELECT c.left_id, c.right_id, c.decision, l.id, r.id FROM comparisons c "
                "LEFT JOIN generations l ON l.id = c.left_id LEFT JOIN generations r ON r.id = c.right_id "
                "WHERE c.id = ?", (d["cid"],)).fetchone()
            if row is None or row[:3] != (d["left"], d["right"], d["decision"]) or None in row[3:]:
                lost.append(d["cid"])
        total = conn.execute("SELECT count(*) FROM comparisons").fetchone()[0]
    finally:
        conn.close()
    return {"after_s": round(delay, 2), "shown": len(decisions), "lost": lost, "quick_check": check,
            "comparisons_in_db": total}


# ---------------------------------------------------------------- PPO


def tuilab(lab: Path, *argv: str, **kw) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    return subprocess.Popen([sys.executable, "-m", "tuilab", "--home", str(lab), *argv],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, **kw)


def _pairs_file(path: Path, n: int) -> Path:
    topics = ["the sea", "a rainbow", "Paris", "prime numbers", "sleep", "cats", "autumn", "bread"]
    with open(path, "w") as fh:
        for i in range(n):
            t = topics[i % len(topics)]
            fh.write(json.dumps({"prompt": f"Tell me about {t} ({i}).",
                                 "chosen": f"A clear, short answer about {t}.",
                                 "rejected": f"I don't know anything about {t}, sorry sorry sorry."}) + "\n")
    return path


def _checkpoint_steps(db: Path, run_id: str, run_dir: Path) -> int:
    conn = sqlite3.connect(db)
    try:
        row = conn.execute("SELECT MAX(step) FROM checkpoints WHERE run_id = ?", (run_id,)).fetchone()
        recorded = conn.execute("SELECT MAX(step) FROM metrics WHERE run_id = ?", (run_id,)).fetchone()[0] or 0
    finally:
        conn.close()
    on_disk = [int(p.name[5:]) for p in (run_dir / "checkpoints").glob("step-*") if p.name[5:].isdigit()
               and any(p.iterdir())] if (run_dir / "checkpoints").is_dir() else []
    newest = max([row[0] or 0, *[s for s in on_disk if s <= recorded]])
    return newest


def _watch(proc: subprocess.Popen, lines: list[str], first: threading.Event) -> None:
    """Collect stderr lines; `first` is set at the process's first checkpoint."""
    for line in proc.stderr:  # type: ignore[union-attr]
        lines.append(line)
        if line.startswith("checkpoint at step "):
            first.set()
    first.set()  # ended without one


def _first_checkpoint(lines: list[str]) -> int | None:
    for line in lines:
        if line.startswith("checkpoint at step "):
            return int(line.split()[3].rstrip(":"))
    return None


def ppo_rounds(lab: Path, model: Path, kills: int, rng: random.Random, total: int) -> dict:
    lab.mkdir(parents=True, exist_ok=True)
    pairs = _pairs_file(lab / "pairs.jsonl", 24)
    subprocess.run([sys.executable, "-m", "tuilab", "--home", str(lab), "data", "import", str(pairs)],
                   check=True, capture_output=True, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    rm = tuilab(lab, "train", "rm", "--quiet", "--set", f"base_model={model}", "--set", "epochs=1",
                "--set", "min_pairs=8", "--set", "checkpoint_every=0")
    out, err = rm.communicate()
    if rm.returncode != 0:
        raise RuntimeError(f"reward model failed: {err[-2000:]}")
    rm_id = json.loads(out.strip().splitlines()[-1])["run_id"]
    argv = ["train", "ppo", "--set", f"base_model={model}", "--set", f"reward_run={rm_id}",
            "--set", f"total_updates={total}", "--set", "batch_size=4", "--set", "minibatch_size=2",
            "--set", "max_new_tokens=8", "--set", "checkpoint_every=1", "--set", "sample_every=1",
            "--set", "ppo_epochs=1"]
    db = lab / "db" / "lab.db"
    rounds = []
    run_id = None
    for k in range(kills + 1):
        newest_before = None if run_id is None else _checkpoint_steps(db, run_id, lab / "models" / "runs" / run_id)
        proc = tuilab(lab, *(argv if run_id is None else ["train", "ppo", "--resume", run_id]))
        lines: list[str] = []
        first = threading.Event()
        watcher = threading.Thread(target=_watch, args=(proc, lines, first), daemon=True)
        watcher.start()
        last = k == kills
        delay = None
        if not last:
            # The kill lands 0-4 s after this process's first checkpoint (model loading excluded).
            first.wait(600)
            delay = rng.uniform(0.0, 4.0)
            time.sleep(delay)
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=1800)
        watcher.join(10)
        err = "".join(lines)
        if run_id is None:
            conn = sqlite3.connect(db)
            row = conn.execute("SELECT id FROM runs WHERE kind = 'ppo' ORDER BY created_at DESC LIMIT 1").fetchone()
            conn.close()
            if row is None:
                raise RuntimeError(f"no PPO run was recorded: {err[-2000:]}")
            run_id = row[0]
        first_step = _first_checkpoint(lines)
        rounds.append({
            "round": k, "killed": not last and proc.returncode == -signal.SIGKILL,
            "after_s": None if delay is None else round(delay, 2), "exit": proc.returncode,
            "newest_checkpoint_before": newest_before, "first_checkpoint_after": first_step,
            "resumed_right_after_newest": None if newest_before is None or first_step is None
            else first_step == newest_before + 1,
            "quick_check": quick_check(db),
        })
        if last and proc.returncode != 0:
            raise RuntimeError(f"the final resume failed: {err[-2000:]}")
    conn = sqlite3.connect(db)
    try:
        steps = [r[0] for r in conn.execute(
            "SELECT DISTINCT step FROM metrics WHERE run_id = ? ORDER BY step", (run_id,))]
        by_name: dict[str, set[int]] = {}
        for name, step in conn.execute("SELECT name, step FROM metrics WHERE run_id = ?", (run_id,)):
            by_name.setdefault(name, set()).add(step)
        ckpt_dupes = conn.execute("SELECT count(*) FROM (SELECT step FROM checkpoints WHERE run_id = ? "
                                  "GROUP BY step HAVING count(*) > 1)", (run_id,)).fetchone()[0]
        samples = {s: n for s, n in conn.execute(
            "SELECT step, count(*) FROM samples WHERE run_id = ? GROUP BY step", (run_id,))}
        status = conn.execute("SELECT status FROM runs WHERE id = ?", (run_id,)).fetchone()[0]
    finally:
        conn.close()
    return {
        "run_id": run_id, "status": status, "rounds": rounds,
        "metric_steps_gapless": steps == list(range(1, total + 1)),
        # Metrics logged at most steps (not the periodic ones) must be at every step.
        "core_metric_gaps": sum(len(set(range(1, total + 1)) - steps_of) for steps_of in by_name.values()
                                if len(steps_of) >= total // 2),
        "checkpoint_steps_duplicated": ckpt_dupes,
        "samples_per_step": sorted(set(samples.values())),
        "samples_steps": len(samples),
    }


# ---------------------------------------------------------------- main


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--label-kills", type=int, default=20)
    parser.add_argument("--ppo-kills", type=int, default=5)
    parser.add_argument("--ppo-updates", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", help="work in this folder and keep it (default: a temporary one)")
    parser.add_argument("--json", help="also write the results here")
    parser.add_argument("--child-label", nargs=3, metavar=("LAB", "MODEL", "SEED"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_label:
        import asyncio

        lab, model, seed = args.child_label
        asyncio.run(_label_child(lab, model, int(seed)))
        return 0

    sys.path.insert(0, str(ROOT))
    from tests.tiny import save_tiny_model

    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="tuilab-crash-"))
    work.mkdir(parents=True, exist_ok=True)
    model = save_tiny_model(work / "tiny-model")
    rng = random.Random(args.seed)
    results: dict = {"model": "tests/tiny.py random 2-layer model", "label": [], "ppo": None}

    lab = work / "label-lab"
    _preload()
    for i in range(args.label_kills):
        r = label_round(lab, model, args.seed + i, rng)
        results["label"].append(r)
        print(f"label kill {i + 1:2d}/{args.label_kills}: after {r['after_s']:.1f}s, {r['shown']} decisions shown, "
              f"{len(r['lost'])} lost, quick_check {r['quick_check']}, {r['comparisons_in_db']} in the database",
              flush=True)
    if args.ppo_kills:
        results["ppo"] = ppo_rounds(work / "ppo-lab", model, args.ppo_kills, rng, args.ppo_updates)
        for r in results["ppo"]["rounds"]:
            print(f"ppo round {r['round']}: killed={r['killed']} after={r['after_s']} exit={r['exit']} "
                  f"newest checkpoint before={r['newest_checkpoint_before']} first after={r['first_checkpoint_after']} "
                  f"quick_check {r['quick_check']}", flush=True)
    shown = sum(r["shown"] for r in results["label"])
    lost = sum(len(r["lost"]) for r in results["label"])
    bad_checks = sum(r["quick_check"] != "ok" for r in results["label"])
    print(f"\nlabeling: {len(results['label'])} kills, {shown} decisions shown, {lost} lost, "
          f"{bad_checks} databases failing quick_check")
    ok = lost == 0 and bad_checks == 0
    if results["ppo"]:
        p = results["ppo"]
        kills = sum(r["killed"] for r in p["rounds"])
        resumed = [r["resumed_right_after_newest"] for r in p["rounds"] if r["resumed_right_after_newest"] is not None]
        ppo_ok = (p["status"] == "completed" and p["metric_steps_gapless"] and p["checkpoint_steps_duplicated"] == 0
                  and p["core_metric_gaps"] == 0 and len(p["samples_per_step"]) <= 1 and all(resumed)
                  and all(r["quick_check"] == "ok" for r in p["rounds"]))
        print(f"ppo: {kills} kills, run {p['status']}, steps gapless {p['metric_steps_gapless']}, "
              f"missing (step, metric) values {p['core_metric_gaps']}, "
              f"duplicate checkpoint steps {p['checkpoint_steps_duplicated']}, samples per step {p['samples_per_step']}, "
              f"resumed right after the newest checkpoint {sum(resumed)}/{len(resumed)} (checkable), "
              f"quick_check ok {sum(r['quick_check'] == 'ok' for r in p['rounds'])}/{len(p['rounds'])}")
        ok = ok and ppo_ok
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
