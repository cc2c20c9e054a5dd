"""Modular addition ``a + b mod p`` with a held-out split: the grokking task of Power et al.
(2022) and Nanda et al. (2023). :mod:`.config` (no torch), :mod:`.task`, :mod:`.capability`."""
