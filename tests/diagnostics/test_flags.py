"""Per-sample flags: which answers look long, repetitive, unfinished, uncertain or overrated."""

from tuilab.diagnostics.flags import FLAG_HELP, FLAGS, LONG_FACTOR, sample_flags


def test_every_flag_has_help():
    assert set(FLAGS) == {"long", "repetitive", "no_eos", "uncertain", "overrated"}
    assert all(len(text) > 20 for text in FLAG_HELP.values())


def test_sample_flags_crafted():
    flags = sample_flags(
        lengths=[10, 16, 20, 10],
        eos=[True, True, False, True],
        tokens=[[1, 2, 3, 4], [5, 6, 7, 5, 6, 7, 5, 6, 7, 5, 6, 7], [8, 9], [1, 3, 5]],
        baseline_length=10,
    )
    assert flags[0] == []
    assert "long" in flags[1] and "repetitive" in flags[1]  # 16 > 1.5 × 10
    assert flags[2] == ["long", "no_eos"]
    assert flags[3] == []
    # exactly LONG_FACTOR × baseline is not long
    assert sample_flags(lengths=[15], eos=[True], baseline_length=15 / LONG_FACTOR) == [[]]


def test_uncertain_and_overrated():
    spreads = [0.1] * 9 + [0.9]
    flags = sample_flags(lengths=[5] * 10, eos=[True] * 10, spreads=spreads)
    assert [i for i, f in enumerate(flags) if "uncertain" in f] == [9]
    scores = [0, 1, 2, 3, 4, 5, 6, 7]
    gold = [7, 6, 5, 4, 3, 2, 1, 0]
    flags = sample_flags(lengths=[5] * 8, eos=[True] * 8, scores=scores, gold=gold)
    assert [i for i, f in enumerate(flags) if "overrated" in f] == [6, 7]
    # a constant gold singles out nothing
    flags = sample_flags(lengths=[5] * 8, eos=[True] * 8, scores=scores, gold=[1.0] * 8)
    assert not any("overrated" in f for f in flags)
