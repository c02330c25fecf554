"""The run journal: JSON lines, flushed per line, resumable, tolerant of a torn last line."""

from __future__ import annotations

import datetime as dt
import enum
import json
import logging
import os
import pickle
from pathlib import Path

import pytest

from ratewindow import JournalError
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
    assert caplog.text.count("cannot be read") == 2


def test_unserialisable_values_and_keys_are_refused(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "run.jsonl")
    journal.load()
    journal.open()
    with pytest.raises(JournalError, match="not JSON-serialisable") as caught:
        write(journal, "a", {"x": object()})
    journal.close()
    assert isinstance(caught.value, TypeError)  # what the journal raised before it had its own error
    assert (tmp_path / "run.jsonl").read_text() == ""  # nothing half-written
    with pytest.raises(TypeError, match="JSON-serialisable"):
        key_text(object())


def nested(depth: int) -> list[object]:
    value: list[object] = []
    for _ in range(depth):
        value = [value]
    return value


class Colour(enum.Enum):
    RED = "red"


class Model:
    """Shaped like an SDK model (hubspot-api-client, simple-salesforce records): ``to_dict()``."""

    def __init__(self, **fields: object) -> None:
        self.fields = fields

    def to_dict(self) -> dict[str, object]:
        return dict(self.fields)


def test_values_are_converted_as_documented(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    journal = Journal(path)
    journal.load()
    journal.open()
    when = dt.datetime(2026, 3, 8, 7, 30, tzinfo=dt.timezone(dt.timedelta(hours=-5)))
    write(journal, "model", Model(id="51", created=when, inner=Model(day=dt.date(2026, 3, 8))))
    write(journal, "naive", dt.datetime(2026, 3, 8, 7, 30, 0, 250000))
    write(journal, "time", dt.time(9, 15))
    write(journal, "enum", [Colour.RED])
    write(journal, "set", {3, 1, 2})
    write(journal, "frozenset", frozenset({"b", "a"}))
    write(journal, "tuple", (1, (2, 3)))
    journal.close()
    values = {json.loads(k): r["value"] for k, r in Journal(path).load().items()}
    assert values == {
        "model": {"id": "51", "created": "2026-03-08T07:30:00-05:00", "inner": {"day": "2026-03-08"}},
        "naive": "2026-03-08T07:30:00.250000",
        "time": "09:15:00",
        "enum": ["red"],
        "set": [1, 2, 3],
        "frozenset": ["a", "b"],
        "tuple": [1, [2, 3]],
    }


def test_a_real_sdk_model_is_journaled_through_to_dict(tmp_path: Path) -> None:
    objects = pytest.importorskip("hubspot.crm.objects")
    created = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    model = objects.SimplePublicObject(id="51", properties={"hs_call_title": "intro"}, created_at=created,
                                       updated_at=created, archived=False)
    journal = Journal(tmp_path / "run.jsonl")
    journal.load()
    journal.open()
    write(journal, "51", model)
    journal.close()
    value = Journal(tmp_path / "run.jsonl").load()[key_text("51")]["value"]
    assert value["id"] == "51" and value["created_at"] == "2026-01-01T00:00:00+00:00"
    assert value["properties"] == {"hs_call_title": "intro"}


def test_lone_surrogates_are_escaped_and_read_back_unchanged(tmp_path: Path) -> None:
    """``os.fsdecode`` gives lone surrogates for a file name that is not UTF-8: ``json.dumps``
    accepts them, a UTF-8 file cannot hold them raw. They are written as JSON escapes."""
    name = os.fsdecode(b"caf\xe9-\xff.csv")
    path = tmp_path / "run.jsonl"
    journal = Journal(path)
    journal.load()
    journal.open()
    write(journal, name, {"file": name, "size": 3})
    write(journal, "plain", "café")
    journal.close()
    path.read_bytes().decode("utf-8")  # the file is valid UTF-8
    assert "café" in path.read_text(encoding="utf-8")  # other lines keep their text as it is
    record = Journal(path).load()[key_text(name)]
    assert record["key"] == name and record["value"]["file"] == name
    assert os.fsencode(record["value"]["file"]) == b"caf\xe9-\xff.csv"


@pytest.mark.parametrize(
    ("value", "type_name", "reason"),
    [
        (object(), "object", "not JSON-serialisable"),
        ({"rows": [Model(when=object())]}, "dict", "not JSON-serialisable"),
        (nested(100_000), "list", "nested too deeply"),
        (float, "type", "not JSON-serialisable"),
    ],
)
def test_a_value_that_cannot_be_journaled_raises_journal_error_naming_type_and_fix(
        tmp_path: Path, value: object, type_name: str, reason: str) -> None:
    path = tmp_path / "run.jsonl"
    journal = Journal(path)
    journal.load()
    journal.open()
    with pytest.raises(JournalError) as caught:
        write(journal, "k", value)
    write(journal, "next", 1)  # the journal goes on
    journal.close()
    error = caught.value
    assert (error.key, error.value_type) == ("k", type_name)
    assert reason in str(error) and f"({type_name})" in str(error)
    assert "to_dict()" in str(error)  # the fix: return plain data, or an object with to_dict()
    assert error.__cause__ is not None
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.key, copy.value_type, str(copy)) == ("k", type_name, str(error))
    assert list(Journal(path).load()) == [key_text("next")]


def test_a_circular_value_cannot_be_journaled(tmp_path: Path) -> None:
    loop: dict[str, object] = {}
    loop["self"] = loop
    journal = Journal(tmp_path / "run.jsonl")
    journal.load()
    journal.open()
    with pytest.raises(JournalError, match="refers to itself"):
        write(journal, "k", loop)
    journal.close()


def test_an_error_whose_text_cannot_be_had_is_still_journaled(tmp_path: Path) -> None:
    class Unprintable(Exception):
        def __str__(self) -> str:
            raise RuntimeError("no text")

    journal = Journal(tmp_path / "run.jsonl")
    journal.load()
    journal.open()
    write(journal, "k", error=Unprintable())
    write(journal, "s", error=ValueError(os.fsdecode(b"bad \xff name")))
    journal.close()
    lines = [json.loads(line) for line in (tmp_path / "run.jsonl").read_text().splitlines()]
    assert lines[0]["error"].startswith("Unprintable: <")
    assert lines[1]["error"] == "ValueError: bad \udcff name"


def test_load_skips_every_line_it_cannot_read_with_a_warning(tmp_path: Path,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "run.jsonl"
    deep = "[" * 100_000 + "]" * 100_000
    deep_key = '{"key":' + deep + ',"ok":true}'
    huge = '{"key":"huge","ok":true,"value":' + "9" * 5000 + "}"
    path.write_bytes(b"\n".join([
        b'{"key":"a","ok":true}',
        deep.encode(),  # RecursionError
        deep_key.encode(),  # a key too deep to index
        b'{"key":"caf\xe9","ok":true}',  # not UTF-8
        huge.encode(),  # more digits than Python converts (3.11+), or a value fine to read
        b'{"key":"b","ok":true}',
    ]) + b"\n")
    with caplog.at_level(logging.WARNING, logger="ratewindow"):
        done = Journal(path).load()
    assert {key_text("a"), key_text("b")} <= set(done) <= {key_text("a"), key_text("b"), key_text("huge")}
    for number in (2, 3, 4):
        assert f"line {number} " in caplog.text
    assert caplog.text.count("skipped") == 6 - len(done)  # 3 lines, and the huge one where unreadable


def test_duplicate_successful_keys_warn_and_the_last_record_counts(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "run.jsonl"
    path.write_text("\n".join([
        '{"key":"a","ok":true,"value":1}',
        '{"key":"b","ok":false,"error":"x"}',
        '{"key":"b","ok":true,"value":2}',  # failed, then succeeded: the usual retry, no warning
        '{"key":"a","ok":true,"value":3}',
        '{"key":"c","ok":true,"value":4}',
        '{"key":"c","ok":true,"value":5}',
    ]) + "\n")
    with caplog.at_level(logging.WARNING, logger="ratewindow"):
        done = Journal(path).load()
    assert {k: r["value"] for k, r in done.items()} == {key_text("a"): 3, key_text("b"): 2, key_text("c"): 5}
    [warning] = [r for r in caplog.records if "more than once" in r.getMessage()]
    assert "2 key(s)" in warning.getMessage() and "'a' (lines 1 and 4)" in warning.getMessage()


def test_key_text_is_canonical() -> None:
    assert key_text({"b": 1, "a": [1, (2, 3)]}) == key_text({"a": [1, [2, 3]], "b": 1})
    assert key_text("1") != key_text(1)
    assert key_text("é") == '"é"'
