"""Sentences about the effective data transferred D_T, each computed from the counts and values it cites.

D_T is read off the fitted from-scratch curve, so its sign can differ from that of the measured
difference between a condition's cells and the from-scratch cells; these sentences say so where
D_T is shown and name every such case, and they count extrapolations below the smallest and above
the largest measured fine-tune size apart.
"""

from __future__ import annotations

from .latex import Tex, escape, integer, num
from .statements import join_words, plural

DEFINITION = ("$D_T$ is read off the fitted from-scratch curve, not the from-scratch cells, so it can have the "
              "opposite sign of the measured difference between the two")


def extrapolation_sentence(below: int, above: int) -> Tex:
    """'3 need the from-scratch curve below the smallest measured fine-tune size and 2 beyond the largest, so they
    are extrapolations.' / 'No value needs the from-scratch curve outside its measured range.'"""
    if below + above == 0:
        return Tex("No value needs the from-scratch curve outside its measured range of fine-tune sizes.")
    parts = []
    if below:
        parts.append(f"{integer(below)} {'needs' if below == 1 else 'need'} the from-scratch curve below the "
                     "smallest measured fine-tune size")
    if above:
        parts.append(f"{integer(above)} {'needs' if above == 1 else 'need'} it beyond the largest" if below else
                     f"{integer(above)} {'needs' if above == 1 else 'need'} the from-scratch curve beyond the "
                     "largest measured fine-tune size")
    k = below + above
    return Tex(join_words(parts) + f"; {'it is an extrapolation' if k == 1 else 'these are extrapolations'}.")


def sign_sentence(n_points: int, cases: list[tuple[str, int, float, float]]) -> Tex:
    """The definition of D_T, then every case where its sign differs from the measured difference:
    ``cases`` holds (condition, F, measured difference in points, D_T in images)."""
    head = DEFINITION[:1].upper() + DEFINITION[1:]
    if not cases:
        return Tex(f"{head}; here its sign agrees with the measured difference at all "
                   f"{plural(n_points, 'point')}.")
    items = [f"{escape(c)} at $F={integer(F)}$ (measured {num(d, sign=True)} points, $D_T$ "
             f"{num(t, 0 if abs(t) >= 10 else 1, sign=True)} images)" for c, F, d, t in cases]
    return Tex(f"{head}. It does so in {len(cases)} of the {plural(n_points, 'point')}: " + join_words(items)
               + "; there the figure's sign is the curve's, not the cells'.")
