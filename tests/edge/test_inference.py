from devices.layout import Product
from edge.checkout.inference import infer

COLA = Product(barcode="1", name="cola", unit_weight_g=350, weight_sd_g=3, price_minor=149)
BAR = Product(barcode="2", name="bar", unit_weight_g=104, weight_sd_g=2, price_minor=199)


def test_single_unit():
    best = infer(-351.0, [COLA], 6)[0]
    assert (best.barcode, best.quantity) == ("1", 1)
    assert best.confidence > 0.99


def test_quantity_above_one():
    best = infer(-703.0, [COLA], 6)[0]
    assert (best.barcode, best.quantity) == ("1", 2)


def test_two_products_on_a_plate_are_told_apart_by_weight():
    assert infer(312.0, [COLA, BAR], 6)[0].barcode == "2"  # 3 bars, not a can
    assert infer(312.0, [COLA, BAR], 6)[0].quantity == 3


def test_nothing_fits_gives_weak_or_no_hypotheses():
    hyps = infer(-520.0, [COLA], 1)
    assert hyps == [] or hyps[0].likelihood < 1e-3
