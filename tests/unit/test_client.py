"""``sandbox.client``: the result stream, split into messages at a bounded cost
(``StreamReader``), and the fork server's environment."""

from autograder.sandbox import protocol
from autograder.sandbox.client import StreamReader, server_environment

CELL = protocol.encode(protocol.Cell(0, "setup"))
STATUS = protocol.encode(protocol.Status(False, 0.5, 0, None))


def _read(*chunks: bytes, total: int = protocol.TOTAL_LIMIT) -> list:
    reader = StreamReader(total)
    for chunk in chunks:
        reader.feed(chunk)
    reader.feed(b"\n")
    return reader.messages


def test_lines_become_messages_whatever_the_chunks():
    stream = CELL + protocol.encode(protocol.Done()) + STATUS
    whole = _read(stream)
    assert whole == [protocol.Cell(0, "setup"), protocol.Done(), protocol.Status(False, 0.5, 0, None)]
    assert _read(*[stream[i:i + 7] for i in range(0, len(stream), 7)]) == whole


def test_lines_that_are_no_message_are_dropped():
    assert _read(b"garbage\n\n  \n[1]\n" + b'{"type": "oversize", "size": 1}\n' + CELL) == \
        [protocol.Cell(0, "setup")]


def test_a_long_line_is_dropped_as_it_arrives():
    reader = StreamReader(protocol.TOTAL_LIMIT)
    chunk = b"x" * (1 << 20)
    for _ in range(protocol.LINE_LIMIT // len(chunk) + 2):
        reader.feed(chunk)
        assert len(reader.line) <= protocol.LINE_LIMIT, "never holds a line over the limit"
    reader.feed(b"\n" + CELL)
    reader.feed(b"\n")
    assert reader.messages == [protocol.Oversize(reader.size - len(CELL) - 2, "long"),
                               protocol.Cell(0, "setup")]


def test_a_deeply_nested_line_is_not_parsed():
    nested = b"[" * (protocol.CONTAINER_LIMIT + 1)
    assert _read(nested + b"\n" + CELL) == [protocol.Oversize(len(nested), "nested"),
                                            protocol.Cell(0, "setup")]


def test_past_the_total_only_the_status_is_read():
    messages = _read(CELL, b"y" * 100 + b"\n", CELL, CELL, STATUS, total=len(CELL) + 10)
    assert messages[0] == protocol.Cell(0, "setup")
    assert [type(m) for m in messages[1:]] == [protocol.Overflow, protocol.Status]


def test_the_fork_server_gets_the_fresh_state_switch_and_no_other_variable(monkeypatch):
    monkeypatch.setenv("AUTOGRADER_FRESH_PER", "case")
    monkeypatch.setenv("GRADER_TOKEN", "secret")
    monkeypatch.setenv("PATH", "/usr/bin")
    env = server_environment()
    assert env["AUTOGRADER_FRESH_PER"] == "case" and env["PATH"] == "/usr/bin"
    assert "GRADER_TOKEN" not in env and env["OMP_NUM_THREADS"] == "1"
