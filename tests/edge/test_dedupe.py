from edge.ingest.dedupe import SeqTracker, SeqVerdict


def test_duplicates_gaps_and_late_arrivals():
    t = SeqTracker(window=100)
    assert t.check("d", 0, 1) is SeqVerdict.NEW
    assert t.check("d", 1, 2) is SeqVerdict.NEW
    assert t.check("d", 1, 2) is SeqVerdict.DUPLICATE
    assert t.check("d", 4, 3) is SeqVerdict.NEW  # 2 and 3 missing
    assert t.counters() == [("d", 4, 3, 2, 1)]
    assert t.check("d", 3, 4) is SeqVerdict.LATE  # fills one gap
    assert t.check("d", 3, 4) is SeqVerdict.DUPLICATE
    assert t.counters() == [("d", 4, 3, 1, 2)]


def test_devices_are_independent_and_old_numbers_are_dropped():
    t = SeqTracker(window=10)
    assert t.check("a", 5, 0) is SeqVerdict.NEW
    assert t.check("b", 5, 0) is SeqVerdict.NEW
    for s in range(6, 40):
        t.check("a", s, 0)
    assert t.check("a", 10, 0) is SeqVerdict.DUPLICATE  # older than the window


def test_restart_after_rebirth_accepts_a_new_numbering():
    t = SeqTracker()
    t.check("d", 50, 0)
    t.restart("d")
    assert t.check("d", 0, 0) is SeqVerdict.NEW
