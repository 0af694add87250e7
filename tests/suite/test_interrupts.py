"""Stopping a run with SIGTERM (a CI runner's cancel, ``timeout``) aborts it like Ctrl-C, so the fixtures clean up
(support/run/interrupts.py)."""

import os
import signal

import pytest

from support.run.interrupts import sigterm_aborts_the_run


def test_sigterm_interrupts_the_run_like_ctrl_c_so_the_fixtures_clean_up():
    previous = signal.getsignal(signal.SIGTERM)
    try:
        sigterm_aborts_the_run()
        with pytest.raises(KeyboardInterrupt, match="SIGTERM"):
            os.kill(os.getpid(), signal.SIGTERM)
            signal.sigtimedwait([], 0)  # the handler runs at the next bytecode; this gives it one
    finally:
        signal.signal(signal.SIGTERM, previous)
