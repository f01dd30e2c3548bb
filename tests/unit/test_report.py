"""``report``: the progress bar."""

import io

from autograder import report


def test_progress_bar_is_plain_text_without_a_tty():
    stream = io.StringIO()
    bar = report.Progress(3, stream=stream)
    for _ in range(3):
        bar.advance()
    bar.finish()
    lines = stream.getvalue().splitlines()
    assert "\r" not in stream.getvalue() and lines[-2].startswith("[###") and "3/3" in lines[-2]
    assert "ETA" in lines[0]


def test_progress_counts_what_an_earlier_run_graded_apart():
    stream = io.StringIO()
    bar = report.Progress(3, resumed=2, stream=stream)
    bar.advance(kept=True)
    bar.advance(error=True)
    bar.advance()
    bar.finish()
    text = stream.getvalue()
    assert text.startswith("resuming: 2 of 3 already graded")
    assert "graded 2 submission(s)" in text and "errors 1" in text
