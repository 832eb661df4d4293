"""The training side of the lab UI: the train screen, the runs screen and the PPO inspector.

- `messages.JobEvents`: what the job thread posts to the App (batched, ~4 Hz).
- `live.LiveRun`: one run's curves, samples and warnings, fed from those events or
  rebuilt from the database (pure Python, no Textual), so every screen draws the
  same numbers whether the run is live or finished last week.
- `host.TrainingHost`: the App mixin that starts jobs in one training thread and
  keeps the `LiveRun`s; screens only read them and call its start/pause/cancel.
- `charts`, `forms`, `samples_table`: the widgets; `train`, `runs`, `inspect`: the screens.
"""
