"""The lowest layer: generic helpers every other part of the package may use (config checks,
JSON-safe values, lazy exports, atomic writes, seeded row samples, progress display). Nothing
here knows about tasks, models or runs, and nothing here imports another part of the package."""
