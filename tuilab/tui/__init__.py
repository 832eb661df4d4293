"""The Textual UI, a view only. Nothing here imports torch: models run in worker threads.

- `app.py`: the App; it owns the labeling engine's queue and model host and a
  `controller.TrainingController` (one training thread, the runs' `live.LiveRun`s).
- `screens/`: every screen and modal; `widgets/`: charts, tables, panels;
  `messages.py`: what worker threads post to the App; `app.tcss`: the stylesheet.

Entry point: `tuilab.tui.app.run_app(paths, model=...)`; the App class is
`tuilab.tui.app.TuilabApp` (`textual run tuilab.tui.app:TuilabApp`).
"""
