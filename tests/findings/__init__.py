"""The hand-written findings cannot drift from the committed results: every number and verdict
stated in ``REPRODUCTION.md``'s prose (outside the generated blocks) and in the README's
"Does the paper reproduce?" paragraph is recomputed here from ``results/*/runs.csv``,
``fits.json``, ``verdicts.json`` and ``results/forecast/backtest.csv``, formatted as the prose
rounds it, and looked up in the text (whitespace-normalised, so line breaks do not matter).

Not checked, because the committed files do not hold them: per-evaluation or per-checkpoint
values of single runs (Δz at given steps of the default run, B_simple at step 700, |G|'s
checkpoint-to-checkpoint spread), the pilots, the earlier backtest versions' figures, costs
and timings, and the matched-stage result on a 3,000-example run (the paper-regime sweep will
commit it).
"""
