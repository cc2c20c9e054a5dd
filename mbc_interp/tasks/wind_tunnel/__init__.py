"""The "Marginals Before Conditionals" wind tunnel: K-fold ambiguity resolved by a selector.

:mod:`~mbc_interp.tasks.wind_tunnel.config` (the settings, importable without torch),
:mod:`~mbc_interp.tasks.wind_tunnel.construction` (how the strings are drawn),
:mod:`~mbc_interp.tasks.wind_tunnel.task` (the example table and the task protocol) and
:mod:`~mbc_interp.tasks.wind_tunnel.evaluation` (what every evaluation measures)."""
