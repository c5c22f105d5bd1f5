"""Batches depend on the eid alone, so growing a cohort disturbs only the batches it touches."""

from cardiopheno.batching import batch_name, batch_of, eids_in_batch, n_batches_for


def test_batch_of_is_stable_and_in_range():
    eids = [str(1000000 + i) for i in range(500)]
    first = [batch_of(e, 8) for e in eids]
    assert first == [batch_of(e, 8) for e in eids]
    assert set(first) == set(range(8))


def test_adding_subjects_changes_only_their_batches():
    old = [str(i) for i in range(1000)]
    new = [str(i) for i in range(1000, 1020)]
    n = 20
    before = {b: eids_in_batch(old, b, n) for b in range(n)}
    after = {b: eids_in_batch(old + new, b, n) for b in range(n)}
    changed = {b for b in range(n) if before[b] != after[b]}
    assert changed == {batch_of(e, n) for e in new}


def test_batches_are_roughly_even():
    eids = [str(5000000 + i) for i in range(10000)]
    sizes = [len(eids_in_batch(eids, b, 40)) for b in range(40)]
    assert min(sizes) > 200 and max(sizes) < 300  # 250 expected


def test_batch_count_and_names():
    assert n_batches_for(100, 25) == 4
    assert n_batches_for(101, 25) == 5
    assert n_batches_for(0, 25) == 1
    assert batch_name(3) == "b0003"
