"""Token-sequence data: the verified stdlib corpus, its split and cache, windows, and the Dyck grammar."""

import collections
import math
import platform
import shutil
import sysconfig
from pathlib import Path

import jax
import numpy as np
import pytest

from pclab.data import (
    CacheWarning,
    ChecksumMismatch,
    DatasetUnavailable,
    TextDataset,
    bits_per_char,
    load_dataset,
    load_text_dataset,
    next_token_windows,
    one_hot_tokens,
)
from pclab.data.cache import save_arrays
from pclab.data.char_vocab import CHAR_ALPHABET, CHAR_VOCAB_SIZE, UNK_CHAR, UNK_ID, decode_chars, encode_chars
from pclab.data.grammar import dyck_arrays, dyck_optimal_loss, dyck_sequences
from pclab.data.stdlib_corpus import default_manifest, is_validation_file, read_manifest, read_verified_files
from pclab.data.stdlib_manifest import make_manifest

STDLIB = Path(sysconfig.get_paths()["stdlib"])
ON_311 = platform.python_implementation() == "CPython" and platform.python_version_tuple()[:2] == ("3", "11")
needs_311 = pytest.mark.skipif(not ON_311, reason="the shipped manifest describes CPython 3.11's standard library")


def _small_corpus(root: Path, n: int = 12) -> dict:
    """``n`` little Python files under ``root`` and their manifest."""
    rng = np.random.default_rng(0)
    files = []
    for i in range(n):
        rel = f"pkg{i % 3}/mod_{i}.py"
        body = "".join(f"def f{j}(x):\n\treturn x * {rng.integers(100)}  # caf\u00e9\n" for j in range(20 + i))
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(body, encoding="utf-8")
        files.append(rel)
    return make_manifest(root, files, python="3.11.7", identical_in=["3.11.7", "3.11.2"])


def _flip_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


# --- the manifest -------------------------------------------------------------------------


@needs_311
def test_shipped_manifest_matches_this_standard_library():
    m = default_manifest()
    assert m["python"].startswith("3.11.") and len(m["identical_in"]) >= 2
    paths = [e["path"] for e in m["files"]]
    assert paths == sorted(paths) and len(set(paths)) == len(paths) >= 200
    assert not any(p.startswith(("test/", "idlelib/", "tkinter/")) or "/test/" in p for p in paths)
    contents = read_verified_files(STDLIB)  # raises if any file differs
    assert sum(len(c) for c in contents) == m["total_bytes"] > 3_000_000


@needs_311
def test_a_changed_stdlib_file_is_named(tmp_path):
    m = default_manifest()
    for e in m["files"]:
        (tmp_path / "lib" / e["path"]).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(STDLIB / e["path"], tmp_path / "lib" / e["path"])
    victim = m["files"][len(m["files"]) // 2]["path"]
    _flip_byte(tmp_path / "lib" / victim)
    with pytest.raises(ChecksumMismatch, match=rf"1 file\(s\) differ.*{victim} \(size .*SHA-256") as err:
        load_text_dataset("python-stdlib", 16, root=tmp_path / "lib", cache_dir=tmp_path / "cache")
    assert m["python"] in str(err.value) and "PCLAB_STDLIB_DIR" in str(err.value)
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").iterdir())  # nothing cached


def test_changed_and_missing_files_are_named(tmp_path):
    m = _small_corpus(tmp_path)
    read_verified_files(tmp_path, m)
    changed, gone = m["files"][3]["path"], m["files"][7]["path"]
    original = (tmp_path / changed).read_bytes()
    _flip_byte(tmp_path / changed)
    detail = r"\(size \d+ bytes, SHA-256 [0-9a-f]{16}\.\.\.; the manifest has \d+ bytes"
    with pytest.raises(ChecksumMismatch, match=rf"{changed} {detail}"):
        read_verified_files(tmp_path, m)
    (tmp_path / gone).unlink()
    with pytest.raises(ChecksumMismatch, match=rf"1 file\(s\) differ .* and 1 are missing.*{gone} \(missing\)"):
        read_verified_files(tmp_path, m)
    (tmp_path / changed).write_bytes(original)
    with pytest.raises(DatasetUnavailable, match=rf"{gone} \(missing\).*CPython 3\.11\.7") as err:
        load_text_dataset("python-stdlib", 8, root=tmp_path, manifest=m, cache_dir=tmp_path / "c")
    assert not isinstance(err.value, ChecksumMismatch)
    with pytest.raises(DatasetUnavailable, match="does not exist"):
        read_verified_files(tmp_path / "nowhere", m)


@pytest.mark.parametrize("bad", ["../etc/passwd", "/etc/passwd", "a\\b.py"])
def test_manifest_paths_stay_inside_the_root(bad):
    with pytest.raises(ValueError, match="relative"):
        read_manifest({"files": [{"path": bad, "size": 1, "sha256": "0" * 64}]})


# --- split, encoding, windows -----------------------------------------------------------------


def test_split_is_deterministic_disjoint_and_by_file():
    paths = [e["path"] for e in default_manifest()["files"]]
    val = {p for p in paths if is_validation_file(p)}
    shuffled = list(np.random.default_rng(1).permutation(paths))
    assert val == {p for p in shuffled if is_validation_file(p)}  # order does not matter
    assert 0.05 * len(paths) < len(val) < 0.2 * len(paths)
    assert val <= {p for p in paths if is_validation_file(p, 0.3)}  # a larger fraction only adds files
    # Pinned: the split is the same on every machine and Python (a fixed hash, not hash()).
    assert [is_validation_file(p) for p in ("json/encoder.py", "json/__init__.py", "heapq.py", "abc.py")] == [
        False, True, True, False]
    assert sum(is_validation_file(f"f{i}.py") for i in range(1000)) == pytest.approx(100, abs=30)


def test_corpus_streams_are_the_files_of_each_split(tmp_path):
    m = _small_corpus(tmp_path, n=40)
    ds = load_text_dataset("python-stdlib", 8, root=tmp_path, manifest=m, cache_dir=tmp_path / "c", val_fraction=0.3)
    texts = {e["path"]: (tmp_path / e["path"]).read_text("utf-8") for e in m["files"]}
    val = [p for p in texts if is_validation_file(p, 0.3)]
    assert 0 < len(val) < len(texts) and ds.info["files_val"] == len(val)
    for split, files in (("train", [p for p in texts if p not in val]), ("val", val)):
        expected = "".join(texts[p] for p in files).replace("\u00e9", UNK_CHAR)
        x, y = getattr(ds, f"x_{split}"), getattr(ds, f"y_{split}")
        got = ds.decode(x) + ds.decode(y[-1, -1:])  # with stride = context, windows tile the stream
        assert expected.startswith(got) and 0 <= len(expected) - len(got) < 8
        assert ds.info[f"chars_{split}"] == len(expected)
    assert ds.info["unknown_chars"] == sum(t.count("\u00e9") for t in texts.values())


def test_encoding_round_trips():
    alphabet = "".join(CHAR_ALPHABET[1:])
    text = "".join(np.random.default_rng(0).choice(list(alphabet), 5000))
    ids = encode_chars(text)
    assert ids.dtype == np.uint8 and ids.shape == (5000,) and ids.max() < CHAR_VOCAB_SIZE == 98
    assert decode_chars(ids) == text
    assert [int(i) for i in encode_chars("\t\n A~")] == [1, 2, 3, 3 + ord("A") - 32, 97]
    assert list(encode_chars("é€\r\x0c😀")) == [UNK_ID] * 5  # one token per character
    assert decode_chars(encode_chars("x = 'é'\n")) == f"x = '{UNK_CHAR}'\n"
    with pytest.raises(ValueError, match=r"\[0, 98\)"):
        decode_chars([98])


def test_windows_are_shifted_by_one():
    tokens = np.arange(103) % 97
    x, y = next_token_windows(tokens, 10)
    assert x.shape == y.shape == ((103 - 11) // 10 + 1, 10) and x.dtype == y.dtype == np.int32
    np.testing.assert_array_equal(y[:, :-1], x[:, 1:])
    np.testing.assert_array_equal(x[:, 0], tokens[0:100:10])
    np.testing.assert_array_equal(y[:, -1], tokens[10:101:10])  # each window's last target ...
    np.testing.assert_array_equal(x[1:, 0], y[:-1, -1])  # ... is the next window's first input
    x3, y3 = next_token_windows(tokens, 10, stride=3)
    assert x3.shape[0] == (103 - 11) // 3 + 1 and x3[1, 0] == 3 and y3[0, 0] == 1
    with pytest.raises(ValueError, match="N >= context"):
        next_token_windows(tokens[:10], 10)


def test_one_hot_and_bits_per_char():
    ds = load_text_dataset("dyck", 6, n_train=3, n_val=2)
    oh = ds.one_hot("val")
    assert oh.shape == (2, 6, 5) and oh.dtype == np.float32
    np.testing.assert_array_equal(oh.argmax(-1), ds.y_val)
    assert one_hot_tokens(ds.y_train[0], 5).shape == (6, 5)
    assert bits_per_char(math.log(2.0)) == pytest.approx(1.0)
    assert bits_per_char(math.log(98.0)) == pytest.approx(math.log2(98.0))
    np.testing.assert_allclose(bits_per_char(np.array([0.0, 2 * math.log(2.0)])), [0.0, 2.0])


# --- cache --------------------------------------------------------------------------------


def test_cache_is_reused_and_a_corrupt_entry_rebuilt(tmp_path):
    src, cache = tmp_path / "src", tmp_path / "cache"
    src.mkdir()
    m = _small_corpus(src)
    first = load_text_dataset("python-stdlib", 16, root=src, manifest=m, cache_dir=cache)
    (entry,) = cache.iterdir()
    moved = tmp_path / "moved"
    src.rename(moved)  # the second load must come from the cache: there is no source
    second = load_text_dataset("python-stdlib", 16, root=src, manifest=m, cache_dir=cache)
    np.testing.assert_array_equal(first.x_train, second.x_train)
    np.testing.assert_array_equal(first.y_val, second.y_val)
    _flip_byte(entry)  # corrupt, and no source to rebuild from: refused, never used
    with pytest.warns(CacheWarning, match="corrupt"), pytest.raises(DatasetUnavailable, match="does not exist"):
        load_text_dataset("python-stdlib", 16, root=src, manifest=m, cache_dir=cache)
    assert not entry.exists()
    moved.rename(src)
    load_text_dataset("python-stdlib", 16, root=src, manifest=m, cache_dir=cache)
    _flip_byte(entry)  # corrupt, with the source back: rebuilt
    with pytest.warns(CacheWarning, match="corrupt"):
        third = load_text_dataset("python-stdlib", 16, root=src, manifest=m, cache_dir=cache)
    np.testing.assert_array_equal(first.x_train, third.x_train)
    assert entry.exists()


@needs_311
def test_the_real_corpus_loads_and_is_cached(tmp_path):
    ds = load_text_dataset("python-stdlib", 128, cache_dir=tmp_path)
    assert isinstance(ds, TextDataset) and ds.vocab_size == 98 and ds.context == 128
    assert ds.info["files_train"] + ds.info["files_val"] == len(default_manifest()["files"])
    assert ds.n_train == (ds.info["chars_train"] - 129) // 128 + 1 and ds.n_val > 1000
    assert [p.name for p in tmp_path.iterdir()] == ["python-stdlib-3.11.npz"]
    assert "def " in ds.decode(ds.x_train[:50])
    with pytest.raises(ValueError, match="load_text_dataset"):
        load_dataset("python-stdlib")


@needs_311
def test_a_cache_entry_from_another_manifest_is_rebuilt(tmp_path):
    stale = {"tokens": np.full(1000, 5, np.uint8), "offsets": np.array([0, 1000])}
    save_arrays(tmp_path / "python-stdlib-3.11.npz", stale, source="manifest sha256 0000; vocabulary old")
    ds = load_text_dataset("python-stdlib", 32, cache_dir=tmp_path)
    assert ds.info["chars_train"] + ds.info["chars_val"] > 3_000_000


def test_names_and_options():
    with pytest.raises(ValueError, match="valid names: python-stdlib, dyck"):
        load_text_dataset("shakespeare", 8)
    with pytest.raises(ValueError, match=r"unknown option\(s\) \['root'\]"):
        load_text_dataset("dyck", 8, root="x")
    with pytest.raises(ValueError, match="context"):
        load_text_dataset("dyck", 0)


# --- the Dyck grammar ---------------------------------------------------------------------


def _check_dyck(seq, kinds, max_depth):
    """Independent checker: boundaries only at depth 0, every closer matches, depth bounded."""
    assert seq[0] == 0
    stack = []
    for tok in seq[1:]:
        assert 0 <= tok < 1 + 2 * kinds
        if tok == 0:
            assert not stack, "a word ended with open brackets"
        elif tok % 2 == 1:
            stack.append(tok)
            assert len(stack) <= max_depth
        else:
            assert stack and stack.pop() == tok - 1, "a closer that does not match"


def test_dyck_strings_are_valid_and_seeded():
    tokens, depth = dyck_sequences(500, 60, kinds=3, p_open=0.55, p_end=0.2, max_depth=5, seed=7)
    for seq in tokens.tolist():
        _check_dyck(seq, 3, 5)
    assert depth.max() == 5 and set(np.unique(tokens)) == set(range(7))
    for seq, d in zip(tokens, depth):  # each finished word (between boundaries) is balanced
        assert all(d[t] == 0 for t in np.flatnonzero(seq == 0))
    again, _ = dyck_sequences(500, 60, kinds=3, p_open=0.55, p_end=0.2, max_depth=5, seed=7)
    other, _ = dyck_sequences(500, 60, kinds=3, p_open=0.55, p_end=0.2, max_depth=5, seed=8)
    np.testing.assert_array_equal(tokens, again)
    assert not np.array_equal(tokens, other)
    keyed, _ = dyck_sequences(4, 10, seed=jax.random.key(3))
    assert keyed.shape == (4, 10)


K, P_OPEN, P_END, DEPTH, T = 2, 0.6, 0.3, 2, 5


def _spec_next(prefix):
    """The grammar's next-token distribution after ``prefix``, from its definition."""
    stack = [c for c in prefix[1:] if c]  # fine for valid prefixes: pop matched pairs below
    open_ = []
    for c in stack:
        open_.append(c) if c % 2 else open_.pop()
    if not open_:
        return {0: P_END, **{1 + 2 * j: (1 - P_END) / K for j in range(K)}}
    if len(open_) == DEPTH:
        return {open_[-1] + 1: 1.0}
    return {**{1 + 2 * j: P_OPEN / K for j in range(K)}, open_[-1] + 1: 1 - P_OPEN}


def test_dyck_optimal_loss_matches_brute_force():
    # Exact: enumerate every sequence with its probability; conditional entropy of each target.
    probs = {}

    def grow(prefix, p):
        if len(prefix) == T + 1:
            probs[tuple(prefix)] = p
            return
        for c, q in _spec_next(prefix).items():
            grow(prefix + [c], p * q)

    grow([0], 1.0)
    exact = sum(p * -math.log(_spec_next(list(s[:t + 1]))[s[t + 1]]) for s, p in probs.items() for t in range(T)) / T
    grammar = dict(kinds=K, p_open=P_OPEN, p_end=P_END, max_depth=DEPTH)
    assert sum(probs.values()) == pytest.approx(1.0, abs=1e-12)
    assert dyck_optimal_loss(T, **grammar) == pytest.approx(exact, abs=1e-12)
    # The generator follows that distribution: counts of its sequences and the plug-in
    # conditional entropy of its next tokens, from 100k samples.
    n = 100_000
    tokens, _ = dyck_sequences(n, T + 1, seed=3, **grammar)
    counts = collections.Counter(map(tuple, tokens.tolist()))
    assert set(counts) <= set(probs)
    assert 0.5 * sum(abs(counts.get(s, 0) / n - p) for s, p in probs.items()) < 0.03  # ~0.012 expected
    plug_in = 0.0
    for t in range(T):
        joint, marginal = collections.Counter(), collections.Counter()
        for s, c in counts.items():
            joint[s[:t + 2]] += c
            marginal[s[:t + 1]] += c
        plug_in -= sum(c / n * math.log(c / marginal[k[:-1]]) for k, c in joint.items())
    assert plug_in / T == pytest.approx(exact, abs=0.005)
    # The per-target entropies a data set reports are the same quantity.
    arrays = dyck_arrays(T, n_train=1, n_val=20_000, seed=0, **grammar)
    assert arrays["h_val"].mean() == pytest.approx(exact, abs=0.01)


def test_dyck_dataset():
    ds = load_text_dataset("dyck", 24, n_train=256, n_val=64, kinds=2, seed=1)
    assert ds.x_train.shape == ds.y_train.shape == (256, 24) and ds.x_val.shape == (64, 24)
    np.testing.assert_array_equal(ds.y_train[:, :-1], ds.x_train[:, 1:])
    assert ds.vocab_size == 5 and ds.decode([0, 1, 2, 3, 4]) == "|()[]"
    assert ds.optimal_loss == pytest.approx(dyck_optimal_loss(24, kinds=2))
    assert 0.0 < ds.optimal_loss < math.log(5)
    bigger = load_text_dataset("dyck", 24, n_train=512, n_val=64, kinds=2, seed=1)
    np.testing.assert_array_equal(ds.x_val, bigger.x_val)  # validation set does not move with n_train
