"""Plumbing every layer may use: one-line command errors (``cli``), crash-safe writes and the
git commit (``io``), process settings (``runtime``) and the stopwatch (``timing``). Imports
nothing else of the package."""
