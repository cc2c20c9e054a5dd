"""Runs and sweeps on disk: the file and directory names (:mod:`~mbc_interp.store.layout`), the run
directory and its checkpoints (:mod:`~mbc_interp.store.run_store`), a run read back
(:mod:`~mbc_interp.store.run`), its integrity checks and the trainer-state format."""
