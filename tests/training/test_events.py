"""RunControl: pause, resume and cancel as a loop sees them, and a control that shares another's switches."""

from __future__ import annotations

import threading

import pytest

from tuilab.training.events import CancelledRun, RunControl


def test_check_blocks_while_paused_and_raises_once_cancelled():
    control = RunControl()
    control.check()  # running: returns at once
    control.pause()
    assert control.paused and not control.cancelled
    passed = threading.Event()
    loop = threading.Thread(target=lambda: (control.check(), passed.set()))
    loop.start()
    assert not passed.wait(0.2)  # blocked on the pause
    control.resume()
    loop.join(5)
    assert passed.is_set() and not control.paused
    control.pause()
    control.cancel()  # wakes a paused loop so it can see the cancel
    assert control.cancelled and not control.paused
    with pytest.raises(CancelledRun):
        control.check()


def test_a_control_sharing_another_acts_on_the_same_switches():
    caller = RunControl()
    wrapper = RunControl(shares=caller)
    wrapper.pause()
    assert caller.paused
    caller.resume()
    assert not wrapper.paused
    caller.cancel()
    assert wrapper.cancelled
    with pytest.raises(CancelledRun):
        wrapper.check()
    assert not RunControl().cancelled  # a fresh control has its own switches
