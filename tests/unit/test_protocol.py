"""``sandbox.protocol``: one class per kind of message, written and read back."""

import pytest

from autograder.sandbox import protocol

WRITTEN = [protocol.Sandbox({"landlock": 6, "network": "namespace"}), protocol.Cell(0, "setup"),
           protocol.CellError(1, "f", "ValueError: no"), protocol.Observing("g"),
           protocol.Seen("g", {"0": {"M": [1, 2]}}), protocol.Seen("g", error="it died"),
           protocol.Done(), protocol.Status(True, 1.5, None, 9)]


@pytest.mark.parametrize("message", WRITTEN, ids=lambda m: type(m).__name__)
def test_every_message_the_stream_carries_reads_back_as_written(message):
    line = protocol.encode(message)
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert protocol.parse(line) == message


def test_kinds_are_owned_here():
    assert {m.kind for m in WRITTEN} | {protocol.Kind.OVERSIZE, protocol.Kind.OVERFLOW} == \
        set(protocol.Kind)
    assert protocol.STATUS_MARK in protocol.encode(protocol.Status())


def test_seen_answers_encoded_once_are_spliced_into_the_same_line():
    answers = b'{"0": {"x": [1.5, "NaN"]}, "1": {"raised": {"type": "E"}}}'
    line = protocol.encode_seen("g\"1", answers)
    assert line == protocol.encode(protocol.Seen("g\"1", protocol.parse(line).answers))
    assert protocol.parse(line) == protocol.Seen("g\"1", {"0": {"x": [1.5, "NaN"]},
                                                          "1": {"raised": {"type": "E"}}})


@pytest.mark.parametrize("line", [b"not json", b"[1, 2]", b'{"no": "type"}', b'{"type": 3}',
                                  b'{"type": "oversize", "size": 1}', b'{"type": "overflow"}',
                                  b'{"type": "seen", "grade_id": 7, "seen": 1}', b"[" * 5000])
def test_a_line_that_is_no_message_is_none(line):
    """What the student process cannot say: no kind of ours, a malformed field, or a kind
    only the grader's reader makes."""
    assert protocol.parse(line) is None


def test_long_texts_are_cut_where_they_are_read():
    message = protocol.parse(protocol.encode(protocol.CellError(0, "l" * 500, "e" * 10_000)))
    assert len(message.label) == 100 and len(message.error) == protocol.TEXT_LIMIT
