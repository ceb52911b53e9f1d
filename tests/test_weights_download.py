"""The real download path against a loopback HTTP server: success, faults
(404, dropped connection, wrong hash, timeout), retries, offline use, an
unreachable network, a pre-seeded cache and four concurrent processes.

The production table is not weakened: tests add their own entry to
``weights.OFFICIAL_WEIGHTS`` (monkeypatched, undone after the test) whose
md5 is that of the generated file, and point the documented mirror
override ``KERAS_ZOO_PLUS_WEIGHTS_URL`` at the loopback server.
"""

import dataclasses
import json
import os
import pathlib
import socket
import subprocess
import sys

import numpy as np
import pytest
import tiny_models

from keras_zoo_plus import imagenet, model_table, weights

from helpers import write_model_h5

KEY = "zoo_test_tiny"
FNAME = f"{KEY}_notop.h5"
REL = f"tiny/{FNAME}"


@pytest.fixture
def served(keras_home, http_server, tmp_path, monkeypatch):
    """A tiny no-top model, its generated legacy .h5 file served by the
    loopback server under the mirror, and a table entry with its md5."""
    model = tiny_models.tiny(include_top=False)
    path, md5, arrays = write_model_h5(tmp_path / FNAME, model)
    http_server.add(REL, pathlib.Path(path).read_bytes())
    monkeypatch.setenv(weights.BASE_URL_ENV, http_server.url())
    cache = keras_home / "models"
    return dict(model=model, md5=md5, official=weights.WeightFile(FNAME, REL, md5, False), arrays=arrays, server=http_server, cache=cache,
                url=http_server.url(REL), target=str(cache / FNAME), src=path)


def cache_listing(cache):
    return sorted(os.listdir(cache)) if os.path.isdir(cache) else []


def load(model, official):
    return weights.load_weights(model, "imagenet", official=official)


def assert_weights(model, arrays):
    got = tiny_models.weights_of(model)
    assert len(got) == len(arrays)
    for a, b in zip(got, arrays):
        np.testing.assert_array_equal(a, b)


def test_download_verifies_caches_and_loads(served):
    model, server = served["model"], served["server"]
    before = socket.getdefaulttimeout()
    load(model, served["official"])
    assert socket.getdefaulttimeout() == before
    assert_weights(model, served["arrays"])
    assert cache_listing(served["cache"]) == [FNAME]
    assert weights.md5sum(served["target"]) == served["md5"]
    assert server.count(REL) == 1
    # A second load is served from the cache, without the network.
    other = tiny_models.tiny(include_top=False)
    load(other, served["official"])
    assert_weights(other, served["arrays"])
    assert server.count(REL) == 1


FAULTS = {
    "404": "the server answered HTTP 404 (Not Found)",
    "drop": "the connection closed before the end of the file",
    "corrupt": "md5 does not match the expected",
    "slow": "sent nothing for 0.5 s (KERAS_ZOO_PLUS_TIMEOUT",
}


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_fault_gives_clear_error_clean_cache_and_retry_succeeds(fault, served, monkeypatch):
    model, server = served["model"], served["server"]
    monkeypatch.setenv(weights.TIMEOUT_ENV, "0.5")
    server.fault(REL, fault)
    before = tiny_models.weights_of(model)
    timeout_before = socket.getdefaulttimeout()
    with pytest.raises(ValueError) as info:
        load(model, served["official"])
    msg = str(info.value)
    assert FAULTS[fault] in msg
    assert served["url"] in msg
    assert f"md5 {served['md5']}" in msg
    assert f"place it at {served['target']}" in msg
    assert "Nothing was written to the cache" in msg
    assert cache_listing(served["cache"]) == []  # no partial file, no temp folder
    assert_weights(model, before)  # untouched
    assert socket.getdefaulttimeout() == timeout_before
    # The fault was transient: a retry downloads, verifies and loads.
    load(model, served["official"])
    assert_weights(model, served["arrays"])
    assert cache_listing(served["cache"]) == [FNAME]
    assert server.count(REL) == 2


def test_wrong_hash_in_table_never_reaches_cache(served, monkeypatch):
    wrong = "0" * 32
    official = dataclasses.replace(served["official"], file_hash=wrong)
    with pytest.raises(ValueError, match=f"md5 does not match the expected {wrong}"):
        load(served["model"], official)
    assert cache_listing(served["cache"]) == []


def test_stale_wrong_file_in_cache_is_replaced(served):
    os.makedirs(served["cache"], exist_ok=True)
    pathlib.Path(served["target"]).write_bytes(b"truncated")
    load(served["model"], served["official"])
    assert_weights(served["model"], served["arrays"])
    assert weights.md5sum(served["target"]) == served["md5"]
    assert served["server"].count(REL) == 1


def test_abandoned_temporary_folders_are_cleaned(served):
    """A process killed mid-download leaves its temporary folder; a day-old
    one is removed by the next fetch, a fresh one (maybe live) is kept."""
    os.makedirs(served["cache"], exist_ok=True)
    old = served["cache"] / f".{FNAME}.abc.part"
    fresh = served["cache"] / f".{FNAME}.def.part"
    for d in (old, fresh):
        d.mkdir()
        (d / FNAME).write_bytes(b"partial")
    os.utime(old, (0, 0))
    load(served["model"], served["official"])
    assert cache_listing(served["cache"]) == sorted([FNAME, fresh.name])


def test_offline_env_names_url_hash_and_cache_path(served, monkeypatch):
    monkeypatch.setenv(weights.OFFLINE_ENV, "1")
    with pytest.raises(ValueError) as info:
        load(served["model"], served["official"])
    msg = str(info.value)
    assert "is missing in the cache and KERAS_ZOO_PLUS_OFFLINE is set" in msg
    for part in (served["url"], f"md5 {served['md5']}", f"place it at {served['target']}"):
        assert part in msg
    assert served["server"].requests == []
    # A wrong file placed there by hand is reported, not trusted.
    pathlib.Path(served["target"]).write_bytes(b"not the file")
    with pytest.raises(ValueError, match="holds a file whose md5 does not match"):
        load(served["model"], served["official"])


def _closed_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_network_names_url_hash_and_cache_path(served, monkeypatch):
    base = f"http://127.0.0.1:{_closed_port()}/"
    monkeypatch.setenv(weights.BASE_URL_ENV, base)
    with pytest.raises(ValueError) as info:
        load(served["model"], served["official"])
    msg = str(info.value)
    for part in (base + REL, f"md5 {served['md5']}", f"place it at {served['target']}",
                 "the server cannot be reached"):
        assert part in msg
    assert cache_listing(served["cache"]) == []


@pytest.mark.parametrize("offline", ["1", ""])
def test_preseeded_cache_works_without_network(served, monkeypatch, offline):
    os.makedirs(served["cache"], exist_ok=True)
    pathlib.Path(served["target"]).write_bytes(pathlib.Path(served["src"]).read_bytes())
    monkeypatch.setenv(weights.BASE_URL_ENV, f"http://127.0.0.1:{_closed_port()}/")
    monkeypatch.setenv(weights.OFFLINE_ENV, offline)
    load(served["model"], served["official"])
    assert_weights(served["model"], served["arrays"])
    assert served["server"].requests == []


@pytest.mark.parametrize("value", ["0", "-1", "soon", "inf", "nan"])
def test_bad_timeout_setting_is_rejected(served, monkeypatch, value):
    monkeypatch.setenv(weights.TIMEOUT_ENV, value)
    with pytest.raises(ValueError, match=f"KERAS_ZOO_PLUS_TIMEOUT must be a positive number.*{value}"):
        load(served["model"], served["official"])
    assert served["server"].requests == []


_WORKER = r"""
import hashlib, json, os, sys, time
import numpy as np
tests_dir, fname, url, md5, barrier, me = sys.argv[1:7]
sys.path.insert(0, tests_dir)
import tiny_models
from keras_zoo_plus import weights
# Start the four downloads together: wait until every worker is ready.
open(os.path.join(barrier, me), "w").close()
deadline = time.time() + 120
while len(os.listdir(barrier)) < 4 and time.time() < deadline:
    time.sleep(0.01)
path = weights.fetch_file(fname, url, md5)
model = tiny_models.tiny(include_top=False)
weights.assign_legacy(model, weights.read_legacy_h5(path))
digest = hashlib.sha256(b"".join(np.ascontiguousarray(w).tobytes() for w in model.get_weights()))
print(json.dumps({"path": path, "weights": digest.hexdigest()}))
"""


def _digest(arrays):
    import hashlib

    return hashlib.sha256(b"".join(np.ascontiguousarray(a).tobytes() for a in arrays)).hexdigest()


def test_four_processes_fetch_the_same_missing_file(served, tmp_path):
    """Four processes share one KERAS_HOME and fetch the same missing file
    at the same moment, on this session's backend (Keras' ``numpy`` backend
    would need SciPy, which the backend sessions do not install)."""
    server = served["server"]
    # Hold every answer back until all four requests have arrived, so the
    # downloads are certain to overlap (a loaded CI machine may start one
    # worker seconds after the others).
    server.gate(REL, 4, timeout=120)
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    tests_dir = os.path.dirname(os.path.abspath(__file__))
    root = os.path.dirname(tests_dir)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([root, os.environ.get("PYTHONPATH", "")]))
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _WORKER, tests_dir, FNAME, served["url"], served["md5"],
             str(barrier), str(i)],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for i in range(4)
    ]
    outs = []
    for p in procs:
        out, err = p.communicate(timeout=240)
        assert p.returncode == 0, err[-2000:]
        outs.append(json.loads(out.strip().splitlines()[-1]))
    assert {o["path"] for o in outs} == {served["target"]}
    assert cache_listing(served["cache"]) == [FNAME]  # one file, no temporary folders
    assert weights.md5sum(served["target"]) == served["md5"]
    # All four downloads were in flight at once (the gate held them).
    assert server.count(REL) == 4, server.requests
    assert {o["weights"] for o in outs} == {_digest(served["arrays"])}


def test_end_to_end_vgg16_imagenet_through_mirror(keras_home, http_server, tmp_path, monkeypatch):
    """``VGG16(weights="imagenet")`` downloads through the mirror override.
    The served file has the official layout (tf_keras names, recorded by
    the golden harness) with synthetic values; only the md5 of the table
    entry is replaced by the generated file's."""
    from keras_zoo_plus.applications import VGG16

    from helpers import golden_arrays, load_golden, write_legacy_h5

    entry = model_table.get("vgg16")
    official = entry.weight_file(include_top=False)
    _, structure = load_golden("vgg16_notop")
    arrays = golden_arrays(structure, seed=7)
    path = write_legacy_h5(tmp_path / official.fname, structure, arrays)
    data = pathlib.Path(path).read_bytes()
    http_server.add(official.path, data)
    import hashlib

    # The table entry with only the md5 replaced (undone after the test).
    served_wf = dataclasses.replace(official, file_hash=hashlib.md5(data).hexdigest())
    served_entry = dataclasses.replace(
        entry, weights=tuple(served_wf if wf == official else wf for wf in entry.weights))
    monkeypatch.setitem(model_table._load(), "vgg16", served_entry)
    monkeypatch.setenv(weights.BASE_URL_ENV, http_server.url())
    model = VGG16(include_top=False, weights="imagenet", input_shape=(32, 32, 3))
    assert http_server.count(official.path) == 1
    flat = [a for layer in arrays for a in layer]
    got = tiny_models.weights_of(model)
    assert len(got) == len(flat) == 26
    for a, b in zip(got, flat):
        np.testing.assert_array_equal(a, b)
    assert cache_listing(keras_home / "models") == [official.fname]


# --------------------------------------------------------------------------
# sha256 files (keras.applications publishes sha256 for some, e.g. ConvNeXt)


def _hint(url, hash_text, target):
    return (f"Download {url} ({hash_text}) by other means and place it at {target}, "
            f"or set {weights.BASE_URL_ENV} to a mirror holding the official files.")


@pytest.fixture
def served_sha256(served):
    """``served`` with a table entry giving the file's sha256 instead of its md5."""
    import hashlib

    sha = hashlib.sha256(pathlib.Path(served["src"]).read_bytes()).hexdigest()
    return dict(served, sha256=sha, official=weights.WeightFile(FNAME, REL, sha, False))


def test_sha256_file_downloaded_verified_and_cached(served_sha256):
    s = served_sha256
    official = s["official"]
    assert (official.hash_algorithm, official.md5, official.file_hash) == ("sha256", None, s["sha256"])
    load(s["model"], official)
    assert_weights(s["model"], s["arrays"])
    assert cache_listing(s["cache"]) == [FNAME]
    assert weights.file_digest(s["target"], "sha256") == s["sha256"]
    assert s["server"].count(REL) == 1
    # The cached file is verified by its sha256 and reused, without the network.
    other = tiny_models.tiny(include_top=False)
    load(other, official)
    assert_weights(other, s["arrays"])
    assert weights.fetch_file(FNAME, s["url"], s["sha256"]) == s["target"]
    assert s["server"].count(REL) == 1


def test_sha256_corrupted_cached_file_is_downloaded_again(served_sha256):
    s = served_sha256
    os.makedirs(s["cache"], exist_ok=True)
    good = pathlib.Path(s["src"]).read_bytes()
    # Same length, one byte flipped: only the hash tells it apart.
    pathlib.Path(s["target"]).write_bytes(good[:-1] + bytes([good[-1] ^ 0xFF]))
    load(s["model"], s["official"])
    assert_weights(s["model"], s["arrays"])
    assert weights.file_digest(s["target"], "sha256") == s["sha256"]
    assert cache_listing(s["cache"]) == [FNAME]
    assert s["server"].count(REL) == 1


def test_sha256_wrong_bytes_from_server_name_sha256_and_leave_cache_empty(served_sha256):
    s = served_sha256
    s["server"].fault(REL, "corrupt")
    before = tiny_models.weights_of(s["model"])
    with pytest.raises(ValueError) as info:
        load(s["model"], s["official"])
    assert str(info.value) == (
        f"Could not get the weights file {FNAME} from {s['url']}: its sha256 does not match "
        f"the expected {s['sha256']}. Nothing was written to the cache. "
        + _hint(s["url"], f"sha256 {s['sha256']}", s["target"])
    )
    assert cache_listing(s["cache"]) == []
    assert_weights(s["model"], before)


def test_sha256_wrong_hash_in_table_never_reaches_cache(served_sha256):
    s = served_sha256
    wrong = "f" * 64
    with pytest.raises(ValueError) as info:
        weights.fetch_file(FNAME, s["url"], wrong)
    assert str(info.value) == (
        f"Could not get the weights file {FNAME} from {s['url']}: its sha256 does not match "
        f"the expected {wrong}. Nothing was written to the cache. "
        + _hint(s["url"], f"sha256 {wrong}", s["target"])
    )
    assert cache_listing(s["cache"]) == []


def test_sha256_offline_messages(served_sha256, monkeypatch):
    s = served_sha256
    monkeypatch.setenv(weights.OFFLINE_ENV, "1")
    with pytest.raises(ValueError) as info:
        load(s["model"], s["official"])
    assert str(info.value) == (
        f"The weights file {FNAME} is missing in the cache and KERAS_ZOO_PLUS_OFFLINE is set, "
        "so it is not downloaded. " + _hint(s["url"], f"sha256 {s['sha256']}", s["target"])
    )
    # A wrong file placed by hand is reported, the algorithm named.
    pathlib.Path(s["target"]).write_bytes(b"not the file")
    with pytest.raises(ValueError) as info:
        load(s["model"], s["official"])
    assert str(info.value) == (
        f"The weights file {FNAME} holds a file whose sha256 does not match in the cache and "
        "KERAS_ZOO_PLUS_OFFLINE is set, so it is not downloaded. "
        + _hint(s["url"], f"sha256 {s['sha256']}", s["target"])
    )
    assert s["server"].requests == []


def test_md5_messages_unchanged(served, monkeypatch):
    """md5 files keep their messages word for word."""
    monkeypatch.setenv(weights.OFFLINE_ENV, "1")
    os.makedirs(served["cache"], exist_ok=True)
    pathlib.Path(served["target"]).write_bytes(b"not the file")
    with pytest.raises(ValueError) as info:
        load(served["model"], served["official"])
    assert str(info.value) == (
        f"The weights file {FNAME} holds a file whose md5 does not match in the cache and "
        "KERAS_ZOO_PLUS_OFFLINE is set, so it is not downloaded. "
        + _hint(served["url"], f"md5 {served['md5']}", served["target"])
    )


def test_hash_algorithm_follows_keras_rule():
    assert weights.hash_algorithm("8ae6e78ce2933352b1ef4008e6dd2f17bc40771563877d156bc6426c7cf503ff") == "sha256"
    assert weights.hash_algorithm("c2c37ea517e94d9795004a39431a14cb") == "md5"
    assert weights.hash_algorithm("C2C37EA517E94D9795004A39431A14CB") == "md5"


BAD_HASHES = [None, "", "abc", "0" * 40, "0" * 63, "0" * 65, "g" * 32, "z" * 64, 12345]


@pytest.mark.parametrize("value", BAD_HASHES, ids=repr)
def test_hash_algorithm_rejects_other_values(value):
    expected = ("A file hash must be an md5 (32 hex digits) or a sha256 (64 hex digits). "
                f"Received: file_hash={value!r}")
    with pytest.raises(ValueError) as info:
        weights.hash_algorithm(value)
    assert str(info.value) == expected
    if value is not None:
        with pytest.raises(ValueError) as info:
            weights.WeightFile("x.h5", "x/x.h5", value)
        assert str(info.value) == expected


def test_fetch_file_rejects_bad_hash_before_network(served):
    with pytest.raises(ValueError) as info:
        weights.fetch_file(FNAME, served["url"], "0" * 40)
    assert str(info.value) == ("A file hash must be an md5 (32 hex digits) or a sha256 "
                               f"(64 hex digits). Received: file_hash={'0' * 40!r}")
    assert served["server"].requests == []
    assert cache_listing(served["cache"]) == []


def test_weight_file_hash_properties():
    sha, md5 = "8ae6e78ce2933352b1ef4008e6dd2f17bc40771563877d156bc6426c7cf503ff", "a" * 32
    wf = weights.WeightFile("convnext_tiny.h5", "convnext/convnext_tiny.h5", sha)
    assert (wf.file_hash, wf.hash_algorithm, wf.md5) == (sha, "sha256", None)
    wf = weights.WeightFile("f.h5", "d/f.h5", md5)
    assert (wf.file_hash, wf.hash_algorithm, wf.md5) == (md5, "md5", md5)
    wf = weights.WeightFile("f.h5", "d/f.h5", None)
    assert (wf.file_hash, wf.hash_algorithm, wf.md5) == (None, None, None)
    with pytest.raises(AttributeError):
        wf.md5 = md5
    files = model_table.official_files("convnext", ("convnext_tiny.h5", sha),
                                       ("convnext_tiny_notop.h5", md5))
    assert [(f.fname, f.hash_algorithm, f.include_top) for f in files] == [
        ("convnext_tiny.h5", "sha256", True), ("convnext_tiny_notop.h5", "md5", False)]


def test_file_digest(tmp_path):
    import hashlib

    path = tmp_path / "blob"
    data = bytes(range(256)) * 5000  # larger than one read chunk
    path.write_bytes(data)
    assert weights.file_digest(path, "sha256") == hashlib.sha256(data).hexdigest()
    assert weights.file_digest(path, "md5") == hashlib.md5(data).hexdigest()
    assert weights.md5sum(path) == hashlib.md5(data).hexdigest()
    with pytest.raises(ValueError) as info:
        weights.file_digest(path, "sha1")
    assert str(info.value) == "`algorithm` must be 'md5' or 'sha256'. Received: algorithm='sha1'"


# --------------------------------------------------------------------------
# decode_predictions' class index


def _class_index_bytes():
    return json.dumps({str(i): [f"n{i:08d}", f"class_{i}"] for i in range(1000)}).encode()


@pytest.fixture
def class_index(keras_home, http_server, monkeypatch):
    data = _class_index_bytes()
    import hashlib

    md5 = hashlib.md5(data).hexdigest()
    url = http_server.add("data/imagenet_class_index.json", data)
    monkeypatch.setattr(imagenet, "CLASS_INDEX_MD5", md5)
    monkeypatch.setattr(imagenet, "_class_index_cache", {})
    monkeypatch.setenv(imagenet.CLASS_INDEX_URL_ENV, url)
    return dict(url=url, md5=md5, target=str(keras_home / "models" / imagenet.CLASS_INDEX_FILE),
                server=http_server, cache=keras_home / "models")


def test_decode_predictions_downloads_verifies_and_caches_class_index(class_index, monkeypatch):
    preds = np.zeros((2, 1000), "float32")
    preds[0, 7] = 0.9
    preds[0, 3] = 0.5
    preds[1, 999] = 2.0
    out = imagenet.decode_predictions(preds, top=2)
    assert out[0] == [("n00000007", "class_7", pytest.approx(0.9)), ("n00000003", "class_3", 0.5)]
    assert out[1][0] == ("n00000999", "class_999", 2.0)
    assert cache_listing(class_index["cache"]) == [imagenet.CLASS_INDEX_FILE]
    # A new process (fresh in-memory cache) offline uses the cached file.
    monkeypatch.setattr(imagenet, "_class_index_cache", {})
    monkeypatch.setenv(weights.OFFLINE_ENV, "1")
    assert imagenet.decode_predictions(preds, top=1)[1][0][1] == "class_999"
    assert class_index["server"].count("data/imagenet_class_index.json") == 1


@pytest.mark.parametrize("fault", ["offline", "corrupt", "404"])
def test_decode_predictions_class_index_errors(class_index, monkeypatch, fault):
    if fault == "offline":
        monkeypatch.setenv(weights.OFFLINE_ENV, "1")
    else:
        class_index["server"].fault("data/imagenet_class_index.json", fault)
    with pytest.raises(ValueError) as info:
        imagenet.decode_predictions(np.ones((1, 1000)))
    msg = str(info.value)
    assert "ImageNet class index" in msg
    for part in (class_index["url"], f"md5 {class_index['md5']}",
                 f"place it at {class_index['target']}"):
        assert part in msg
    assert cache_listing(class_index["cache"]) == []
