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


def test_pools_of_the_run_so_far_replace_the_batch_as_reference():
    # Alone, the batch's largest spread is in its own top decile; against a run of larger spreads it is not.
    spreads = [0.1, 0.2, 0.3, 0.4]
    alone = sample_flags(lengths=[5] * 4, eos=[True] * 4, spreads=spreads)
    assert ["uncertain" in f for f in alone] == [False, False, False, True]
    pooled = sample_flags(lengths=[5] * 4, eos=[True] * 4, spreads=spreads, spread_pool=spreads + [0.9] * 20)
    assert not any("uncertain" in f for f in pooled)
    # Likewise for "overrated": this batch's best-scored, worst-gold sample is ordinary for the run.
    scores, gold = [0.0, 1.0, 2.0, 3.0], [3.0, 2.0, 1.0, 0.0]
    assert "overrated" in sample_flags(lengths=[5] * 4, eos=[True] * 4, scores=scores, gold=gold)[3]
    run = sample_flags(lengths=[5] * 4, eos=[True] * 4, scores=scores, gold=gold,
                       score_pool=scores + [10.0] * 8, gold_pool=gold + [-5.0] * 8)
    assert not any("overrated" in f for f in run)


def test_missing_values_single_out_nothing():
    # No baseline: nothing is "long"; a zero or missing spread is never "uncertain".
    flags = sample_flags(lengths=[500, 5, 5], eos=[True] * 3, spreads=[0.0, None, 0.0])
    assert flags == [[], [], []]
    # Fewer than four gold values (None dropped): quartiles mean nothing, so nothing is "overrated".
    flags = sample_flags(lengths=[5] * 4, eos=[True] * 4, scores=[0, 1, 2, 3], gold=[3, None, 1, 0])
    assert not any("overrated" in f for f in flags)
    # Tokens of a response too short for one 3-gram are not repetitive.
    assert sample_flags(lengths=[2], eos=[True], tokens=[[7, 7]]) == [[]]


def test_help_sentences_name_the_thresholds():
    assert f"{LONG_FACTOR}×" in FLAG_HELP["long"]
    assert "30% of its 3-grams" in FLAG_HELP["repetitive"]
