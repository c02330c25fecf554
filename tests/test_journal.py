"""The run journal: JSON lines, flushed per line, resumable, tolerant of a torn last line."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from ratewindow._journal import Journal, key_text


def write(journal: Journal, key: object, value: object = None, error: BaseException | None = None) -> None:
    journal.append(key, error is None, value, error, 1, 0.25)


def test_round_trip_keeps_only_successes(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    journal = Journal(path)
    assert journal.load() == {}
    journal.open()
    write(journal, "a", {"n": 1})
    write(journal, ["b", 2], [1, 2])
    write(journal, "c", error=ValueError("nope"))
    # flushed line by line: readable before close
    assert len(path.read_text().splitlines()) == 3
    journal.close()
    journal.close()
    done = Journal(path).load()
    assert set(done) == {key_text("a"), key_text(["b", 2])}
    assert done[key_text("a")] == {"key": "a", "ok": True, "value": {"n": 1}, "attempts": 1, "elapsed": 0.25}
    assert json.loads(path.read_text().splitlines()[2])["error"] == "ValueError: nope"


def test_a_later_success_counts(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    journal = Journal(path)
    journal.load()
    journal.open()
    write(journal, 7, error=ConnectionError())
    write(journal, 7, 49)
    journal.close()
    assert Journal(path).load()[key_text(7)]["value"] == 49


def test_torn_tail_is_ignored_then_cut(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "run.jsonl"
    path.write_bytes(b'{"key":"a","ok":true,"value":1}\n{"key":"b","ok":true,"va')
    journal = Journal(path)
    with caplog.at_level(logging.WARNING, logger="ratewindow"):
        assert set(journal.load()) == {key_text("a")}
    assert "cut short" in caplog.text
    journal.open()
    write(journal, "b", 2)
    journal.close()
    assert path.read_bytes().splitlines() == [
        b'{"key":"a","ok":true,"value":1}',
        b'{"key":"b","ok":true,"value":2,"attempts":1,"elapsed":0.25}',
    ]


def test_whole_record_missing_only_its_newline_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    path.write_bytes(b'{"key":"a","ok":true,"value":1}')
    journal = Journal(path)
    assert set(journal.load()) == {key_text("a")}
    journal.open()
    write(journal, "b", 2)
    journal.close()
    assert set(Journal(path).load()) == {key_text("a"), key_text("b")}


def test_garbage_in_the_middle_is_skipped_with_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture
                                                          ) -> None:
    path = tmp_path / "run.jsonl"
    path.write_text('{"key":"a","ok":true}\nnot json\n[1,2]\n{"key":"b","ok":true}\n')
    with caplog.at_level(logging.WARNING, logger="ratewindow"):
        assert set(Journal(path).load()) == {key_text("a"), key_text("b")}
    assert caplog.text.count("is not a record") == 2


def test_unserialisable_values_and_keys_are_refused(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "run.jsonl")
    journal.load()
    journal.open()
    with pytest.raises(TypeError, match="not JSON-serialisable"):
        write(journal, "a", {1, 2})
    journal.close()
    assert (tmp_path / "run.jsonl").read_text() == ""  # nothing half-written
    with pytest.raises(TypeError, match="JSON-serialisable"):
        key_text(object())


def test_key_text_is_canonical() -> None:
    assert key_text({"b": 1, "a": [1, (2, 3)]}) == key_text({"a": [1, [2, 3]], "b": 1})
    assert key_text("1") != key_text(1)
    assert key_text("é") == '"é"'
