"""Building blocks of pipeline runs: config files, shards, dedupe, resume keys, JSON lines, saved bodies."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from fetchpool.config import ConfigError, load
from fetchpool.filters import Seen, done_keys, in_shard, parse_shard, target_key
from fetchpool.jsoninput import LineRequest, parse_object
from fetchpool.paths import UnsafePath
from fetchpool.save import BodyFile, extension, file_name

KNOWN = {"concurrency": False, "header": True, "per_host": False, "insecure": False}


def test_config_keys_take_dashes_or_underscores_and_lists(tmp_path: Path) -> None:
    path = tmp_path / "fp.toml"
    path.write_text('concurrency = 32\nper-host = 2\nheader = "X-A: 1"\ninsecure = true\n')
    # values reach Click as text, to be converted and refused exactly as the flag's own
    assert load(str(path), KNOWN) == {"concurrency": "32", "per_host": "2", "header": ["X-A: 1"], "insecure": "true"}
    path.write_text('header = ["X-A: 1", "X-B: 2"]\n')
    assert load(str(path), KNOWN) == {"header": ["X-A: 1", "X-B: 2"]}


@pytest.mark.parametrize(
    "text, message",
    [
        ("concurency = 3\n", "unknown setting 'concurency'"),
        ("concurrency = [1, 2]\n", "takes one value"),
        ("[concurrency]\nx = 1\n", "must be a value"),
        ("concurrency = \n", "not valid TOML"),
    ],
)
def test_config_mistakes_are_named(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "fp.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load(str(path), KNOWN)
    with pytest.raises(ConfigError, match="cannot read"):
        load(str(tmp_path / "absent.toml"), KNOWN)


def test_shards_partition_any_input_exactly() -> None:
    keys = [target_key("GET", f"http://127.0.0.1/{i}") for i in range(5000)] + [
        target_key("GET", "x", id=i) for i in range(50)
    ]
    for total in (1, 2, 3, 7):
        owners = [[k for k in range(total) if in_shard(key, k, total)] for key in keys]
        assert all(len(o) == 1 for o in owners)  # every key in exactly one shard
        sizes = [sum(o == [k] for o in owners) for k in range(total)]
        assert min(sizes) > len(keys) / total * 0.8  # and shards are roughly even
    assert in_shard("GET http://127.0.0.1/1", *parse_shard("0/2")) != in_shard(
        "GET http://127.0.0.1/1", *parse_shard("1/2")
    )


@pytest.mark.parametrize("bad", ["2/2", "-1/3", "1", "a/b", "0/0", "1/"])
def test_bad_shards_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="K/N"):
        parse_shard(bad)


def test_seen_is_bounded_and_says_so() -> None:
    seen = Seen(limit=3)
    assert [seen.add(k) for k in ("a", "b", "a", "c")] == [True, True, False, True]
    assert seen.add("d") and seen.overflowed and len(seen) == 3
    assert seen.add("d")  # past the bound a key is not remembered: fetched again, never lost


def test_done_keys_take_ok_records_only_and_tolerate_a_torn_line() -> None:
    lines = [
        b'{"url":"http://127.0.0.1/a","ok":true}\n',
        b'{"url":"http://127.0.0.1/b","ok":false}\n',
        b'{"url":"http://127.0.0.1/c","ok":true,"id":7}\n',
        b"not json\n",
        b'{"url":"http://127.0.0.1/d","ok":tr',
    ]
    done = done_keys(lines, "GET")
    assert target_key("GET", "http://127.0.0.1/a") in done
    assert target_key("GET", "http://127.0.0.1/b") not in done
    assert target_key("GET", "http://127.0.0.1/d") not in done
    assert target_key("GET", "ignored", id=7) in done and len(done) == 2


def test_json_line_requests() -> None:
    got = parse_object(
        '{"url": " http://127.0.0.1/x ", "method": "POST", "headers": {"X-A": "1"}, "json": {"a": [1]}, "id": "k", "meta": {"row": 3}}'
    )
    assert got == LineRequest("http://127.0.0.1/x", "POST", (("X-A", "1"),), b'{"a":[1]}', True, "k", {"row": 3})
    assert parse_object('{"url": "http://127.0.0.1/", "data": "a=1"}') == LineRequest("http://127.0.0.1/", body=b"a=1")


@pytest.mark.parametrize(
    "text, message",
    [
        ("{nope", "not a JSON object"),
        ("[1]", "a JSON list"),
        ("{}", "missing 'url'"),
        ('{"url": 5}', "missing 'url'"),
        ('{"url": "http://127.0.0.1/", "headers": {"a": 1}}', "'headers' must be"),
        ('{"url": "http://127.0.0.1/", "headers": []}', "'headers' must be"),
        ('{"url": "http://127.0.0.1/", "method": 3}', "'method' must be"),
        ('{"url": "http://127.0.0.1/", "data": {}}', "'data' must be a string"),
        ('{"url": "http://127.0.0.1/", "data": "", "json": 1}', "not both"),
        ('{"url": "http://127.0.0.1/", "bogus": 1}', "unknown key 'bogus'"),
    ],
)
def test_bad_json_lines_say_what_is_wrong(text: str, message: str) -> None:
    got = parse_object(text)
    assert isinstance(got, str) and message in got


def test_saved_names_never_collide_and_never_escape(tmp_path: Path) -> None:
    names = {
        file_name("GET", "http://127.0.0.1/a"),
        file_name("GET", "https://127.0.0.1/a"),
        file_name("HEAD", "http://127.0.0.1/a"),
        file_name("GET", "http://127.0.0.1/a", id=1),
        file_name("GET", "http://127.0.0.1/a", id="1"),
    }
    assert len(names) == 5
    assert file_name("GET", "http://127.0.0.1/../../etc/passwd", content_type="text/html").endswith(".html")
    assert extension("application/json; charset=utf-8") == ".json" and extension(None) == ".bin"
    with pytest.raises(UnsafePath):
        BodyFile(str(tmp_path), "../escape.html")


def test_a_body_file_appears_only_when_committed(tmp_path: Path) -> None:
    body = BodyFile(str(tmp_path), "x.html")
    body.write(b"<title>hi</title>")
    assert not (tmp_path / "x.html").exists()
    assert body.commit() == str(tmp_path / "x.html") and (tmp_path / "x.html").read_bytes() == b"<title>hi</title>"
    failed = BodyFile(str(tmp_path), "y.html")
    failed.write(b"half")
    failed.discard()
    assert sorted(os.listdir(tmp_path)) == ["x.html"]


def test_config_numbers_are_refused_as_the_flag_would_refuse_them(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from fetchpool.cli import main

    for line in ("retries = 2.9", "retries = true", "concurrency = 8.5"):
        path = tmp_path / "fp.toml"
        path.write_text(line + "\n")
        result = CliRunner().invoke(main, ["--config", str(path), "http://127.0.0.1:9/"])
        assert result.exit_code == 2 and "Invalid value" in result.output, (line, result.output)


def test_nan_and_infinity_are_not_json() -> None:
    for text in ('{"url": "http://127.0.0.1/", "id": NaN}', '{"url": "http://127.0.0.1/", "meta": Infinity}'):
        got = parse_object(text)
        assert isinstance(got, str) and "not a JSON value" in got
