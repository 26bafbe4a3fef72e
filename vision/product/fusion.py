"""Weight hypotheses and a vision score, fused: how a product classifier breaks ties.

The checkout's weight inference gives each candidate (product, quantity) a share of the
likelihood (its ``confidence``).  Where vision saw the product, each hypothesis is
re-weighted by the classifier's probability for its product, tempered by ``weight``
(0: vision ignored, 1: trusted as calibrated) and floored at ``floor`` so that one
view cannot veto a product outright; a product the classifier was never trained on is
neutral.  Shares are normalised again.
Products of equal weight get equal weight-confidence; the classifier decides between
them, and a clear weight answer is left as it was.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence


def fuse_scores(
    hypotheses: Sequence[tuple[str, int, float]],
    vision: Mapping[str, float],
    *,
    weight: float = 1.0,
    floor: float = 0.02,
) -> list[tuple[str, int, float]]:
    """(barcode, quantity, confidence) re-scored with vision; best first, summing to 1."""
    if not hypotheses:
        return []
    barcodes = list(dict.fromkeys(b for b, _, _ in hypotheses))
    known = [b for b in barcodes if b in vision]
    share = {b: 1.0 / len(barcodes) for b in barcodes}  # neutral: vision cannot tell
    total_v = sum(vision[b] for b in known)
    if total_v > 0:
        # The known candidates split their share by the classifier's probabilities; a
        # product the classifier was never trained on keeps the neutral share.
        for b in known:
            share[b] = vision[b] / total_v * len(known) / len(barcodes)
    scored = [
        (barcode, quantity, confidence * max(share[barcode], floor) ** weight)
        for barcode, quantity, confidence in hypotheses
    ]
    total = sum(s[2] for s in scored) or 1.0
    out = [(b, q, c / total) for b, q, c in scored]
    out.sort(key=lambda h: -h[2])
    return out
