"""Tasks: each one package, known to the rest of the toolkit only through
:mod:`mbc_interp.tasks.protocol` and found by name in :mod:`mbc_interp.tasks.registry`."""
