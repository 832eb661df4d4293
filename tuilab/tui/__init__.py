"""The Textual UI. Nothing here imports torch at start-up: models load inside worker threads.

Entry point: `tuilab.tui.app.run_app(paths, model=...)`; the App class is
`tuilab.tui.app.TuilabApp` (`textual run tuilab.tui.app:TuilabApp`).
"""
