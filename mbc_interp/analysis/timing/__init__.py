"""When things happen: plateau, drop and onset rules on curves, any task's signal onsets, the
matched marginal/conditional crossings, the run's summary, the drop forecast and its
calibration, and the checkpoints worth comparing."""
