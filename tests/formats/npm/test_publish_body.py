"""The npm publish body scanner (packages_npm.publish_body): the document json.loads would
give (attachment data left as ""), each attachment's decoded bytes in a spool, bad input refused,
and memory that does not grow with the tarball."""

import base64
import json
import os
import tracemalloc

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from packages_npm import publish_body
from packages_npm.publish_body import read_publish_body
from registry.errors import Invalid, TooLarge

MiB = 1024 * 1024


@pytest.fixture(autouse=True)
def _spool_dir(settings, tmp_path):
    settings.SPOOL_DIR = tmp_path / "spool"


def write(tmp_path, text):
    path = tmp_path / "body.json"
    path.write_text(text, encoding="utf-8")
    return path


def scan(path, max_attachment=0, max_document=0):
    return read_publish_body(path, max_attachment, max_document)


def document_without_data(document):
    stripped = json.loads(json.dumps(document))
    for attachment in stripped.get("_attachments", {}).values():
        if isinstance(attachment.get("data"), str):
            attachment["data"] = ""
    return stripped


def assert_round_trip(tmp_path, text, payloads):
    with scan(write(tmp_path, text)) as body:
        assert body.document == document_without_data(json.loads(text))
        assert set(body.attachments) == set(payloads)
        for name, payload in payloads.items():
            spool = body.take(name)
            with spool, open(spool.path, "rb") as handle:
                assert handle.read() == payload


@pytest.mark.parametrize("chunk", [1, 2, 3, 5, 7, 64, publish_body.CHUNK_CHARS])
def test_a_publish_body_splits_into_document_and_attachments(tmp_path, monkeypatch, chunk):
    monkeypatch.setattr(publish_body, "CHUNK_CHARS", chunk)
    payload = os.urandom(1000)
    document = {
        "_id": "@acme/pad",
        "name": "@acme/pad",
        "description": 'quotes " and backslashes \\ and "data": "not this one"',
        "versions": {"1.0.0": {"name": "@acme/pad", "version": "1.0.0", "data": "kept", "readme": "é ☃ 𝄞"}},
        "_attachments": {
            "@acme/pad-1.0.0.tgz": {"content_type": "application/octet-stream", "data": "", "length": 1000}
        },
        "list": [{"data": "kept too"}, 1.5e3, True, None],
    }
    document["_attachments"]["@acme/pad-1.0.0.tgz"]["data"] = base64.b64encode(payload).decode()
    text = json.dumps(document, indent=1 if chunk % 2 else None)
    assert_round_trip(tmp_path, text, {"@acme/pad-1.0.0.tgz": payload})


def test_escaped_slashes_in_the_data_are_base64(tmp_path, monkeypatch):
    monkeypatch.setattr(publish_body, "CHUNK_CHARS", 3)
    payload = bytes([0xFB, 0xFF, 0xBF]) * 50  # base64 full of "/" and "+"
    encoded = base64.b64encode(payload).decode().replace("/", "\\/")
    text = '{"_attachments": {"a.tgz": {"data": "' + encoded + '"}}}'
    assert_round_trip(tmp_path, text, {"a.tgz": payload})


@pytest.mark.parametrize(
    "data",
    ["QUJD!", "QUJ", "QQ==QQ==", 'QUJD\\"', "QUJD\\n", "QU\\u0041D"],
    ids=["bad-char", "short", "padding-inside", "escaped-quote", "escaped-newline", "unicode-escape"],
)
def test_bad_base64_is_refused_and_leaves_no_spool(tmp_path, settings, data):
    path = write(tmp_path, '{"_attachments": {"a.tgz": {"data": "' + data + '"}}}')
    with pytest.raises(Invalid):
        scan(path)
    assert not settings.SPOOL_DIR.exists() or list(settings.SPOOL_DIR.iterdir()) == []


@pytest.mark.parametrize("text", ['{"name": "x', '{"_attachments": {"a.tgz": {"data": "QUJD', "{not json", '{"a": 1,}'])
def test_malformed_json_is_refused(tmp_path, text):
    with pytest.raises(Invalid):
        scan(write(tmp_path, text))


def test_invalid_utf8_is_refused(tmp_path):
    path = tmp_path / "body.json"
    path.write_bytes(b'{"name": "\xff"}')
    with pytest.raises(Invalid):
        scan(path)


def test_limits(tmp_path):
    attachment = '{"_attachments": {"a.tgz": {"data": "' + base64.b64encode(b"x" * 3000).decode() + '"}}}'
    with pytest.raises(TooLarge):
        scan(write(tmp_path, attachment), max_attachment=2999)
    with scan(write(tmp_path, attachment), max_attachment=3000) as body:
        assert body.attachments["a.tgz"].size == 3000
    with pytest.raises(TooLarge):
        scan(write(tmp_path, json.dumps({"readme": "x" * 5000})), max_document=4096)


def peak_memory_scanning(tmp_path, size):
    payload = os.urandom(size)
    path = tmp_path / f"body-{size}.json"
    with open(path, "w") as handle:
        handle.write('{"name": "big", "versions": {"1.0.0": {}}, "_attachments": {"big-1.0.0.tgz": {"data": "')
        for start in range(0, len(payload), 3 * MiB):
            handle.write(base64.b64encode(payload[start : start + 3 * MiB]).decode())
        handle.write(f'", "length": {size}}}}}}}')
    del payload
    tracemalloc.start()
    try:
        with scan(path) as body:
            peak = tracemalloc.get_traced_memory()[1]
            assert body.attachments["big-1.0.0.tgz"].size == size
    finally:
        tracemalloc.stop()
    return peak


def test_memory_does_not_grow_with_the_attachment(tmp_path):
    small = peak_memory_scanning(tmp_path, 4 * MiB)
    large = peak_memory_scanning(tmp_path, 32 * MiB)
    # Parsed whole, the 43 MiB body would be held as text and as data: over 80 MiB.
    assert large < 8 * MiB, large
    assert large - small < MiB, (small, large)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    document=st.dictionaries(st.text(max_size=8), json_values, max_size=5),
    payloads=st.dictionaries(st.text(min_size=1, max_size=6), st.binary(max_size=60), max_size=3),
    chunk=st.integers(min_value=1, max_value=16),
    ascii_only=st.booleans(),
)
def test_any_document_round_trips(tmp_path, monkeypatch, document, payloads, chunk, ascii_only):
    monkeypatch.setattr(publish_body, "CHUNK_CHARS", chunk)
    document["_attachments"] = {name: {"data": base64.b64encode(data).decode()} for name, data in payloads.items()}
    text = json.dumps(document, ensure_ascii=ascii_only)
    with scan(write(tmp_path, text)) as body:
        assert body.document == document_without_data(json.loads(text))
        for name, data in payloads.items():
            with open(body.attachments[name].path, "rb") as handle:
                assert handle.read() == data
