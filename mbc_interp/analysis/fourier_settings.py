"""Settings of the ``fourier`` analysis kind, as plain data (no torch: the analysis registry and
the command line build and validate them early).

Key frequencies from which checkpoint (``freqs_from``):

- ``"final"`` (default, as Nanda et al. 2023): every checkpoint is measured with the *final*
  model's key frequencies, given as ``freqs``. The progress measures ask "is the final
  circuit's mechanism there yet": the restricted loss is how well the final circuit's
  directions alone already do, the excluded loss how much the network already leans on them.
  With the checkpoint's own frequencies a memorising network would be measured against
  whatever its noise happens to peak at. ``freqs`` comes from
  :func:`mbc_interp.analysis.fourier_kind.final_settings` (or ``--kind-setting
  'fourier.freqs=[...]'``); a ``"final"`` analysis without them is an error, not a silent
  fallback.
- ``"each"``: each checkpoint's own key frequencies: causal (it uses nothing from the future),
  the variant a forecast made during training can use.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

from mbc_interp.core.checks import check_field, is_int

KEY_SHARE = 0.95
"""Default share of the logits' frequency energy the key frequencies must carry (see
:func:`mbc_interp.analysis.fourier.key_frequencies`)."""
FREQS_FROM: tuple[str, ...] = ("final", "each")


@dataclass(frozen=True)
class FourierConfig:
    """Which key frequencies the ``fourier`` kind measures with (module docstring)."""

    freqs_from: str = "final"
    """``"final"``: the given ``freqs`` (the final checkpoint's); ``"each"``: the checkpoint's."""
    freqs: tuple[int, ...] = ()
    """The final checkpoint's key frequencies (``freqs_from = "final"``; empty with ``each``)."""
    share: float = KEY_SHARE
    """Share of the logits' frequency energy the key set carries (``each``, and finding the
    final checkpoint's)."""

    def __post_init__(self) -> None:
        need = partial(check_field, obj=self, section="fourier")

        need(self.freqs_from in FREQS_FROM, "freqs_from", f"must be one of {FREQS_FROM}")
        need(
            all(is_int(k) and k >= 1 for k in self.freqs)
            and len(set(self.freqs)) == len(self.freqs),
            "freqs",
            "must be distinct frequencies >= 1",
        )
        need(
            not (self.freqs and self.freqs_from == "each"),
            "freqs",
            "are the final checkpoint's: give them with freqs_from = 'final' only",
        )
        need(0 < self.share <= 1, "share", "must be in (0, 1]")
