"""Running one training job in the calling thread: the run row, persistence, forwarded events.

The shape every job follows (see `runner.py`; `rm_job.py` is the reward-model job,
`ppo_job.py` the PPO one):

    job = Job(kind="rm", config=cfg, fn=lambda ctx: ..., name="...", parents=(...))
    outcome = run_job(job, paths=paths, control=control, forward=callback)

- `fn(ctx: JobContext) -> dict` runs the loop: `ctx.db` (this thread's own
  connection), `ctx.output_dir` (`paths.runs / run_id`, created), `ctx.sink`
  (pass to the training function), `ctx.control` (a RunControl; the loop calls
  `check()` every step). It returns the final metrics. Kind-specific jobs live in
  their own module and export a builder: `reward_job(cfg) -> Job`.
- `run_job` is synchronous: call it from the App's `@work(thread=True)` worker or
  the CLI's main thread. The run id is known before it starts (`job.run_id`).
- `forward(events)` is called about four times a second with the events
  since the last call, after they are committed to SQLite; the last batch ends
  with `Finished`, `Failed` or `Cancelled`.
- Exceptions never escape: `RunOutcome.status` is completed / failed /
  cancelled, with `error_summary` (one line) and `error` (the traceback).
"""

from tuilab.jobs.runner import Job, JobContext, RunOutcome, run_job

__all__ = ["Job", "JobContext", "RunOutcome", "run_job"]
