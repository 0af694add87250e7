"""One log record per line, tracebacks folded in (processor.logs): log shippers split events on newlines, so a
multi-line traceback would become several unrelated events."""

import logging

from processor.logs import LineFormatter


def test_a_traceback_is_folded_into_the_one_line_of_its_record():
    logger = logging.getLogger("test.logs")
    try:
        raise ValueError("bad\nthing")
    except ValueError:
        record = logger.makeRecord("test.logs", logging.ERROR, __file__, 1, "handling failed", (), __import__(
            "sys").exc_info())
    line = LineFormatter().format(record)
    assert "\n" not in line
    assert line.split(" ", 3)[1:3] == ["ERROR", "test.logs"]
    assert "handling failed | Traceback (most recent call last): | " in line
    assert "test_logs.py" in line and line.endswith("ValueError: bad | thing")
