"""prepare.py: encoding, the split, the files it writes, the download, and its errors."""

import hashlib
import http.server
import json
import os
import re
import shlex
import socket
import threading
from pathlib import Path

import numpy as np
import pytest

from machinery import cli
import prepare
from machinery.cli import UserError
from conftest import file_size_limit
from machinery import data

# tiny-shakespeare's input.txt, where the machine has a copy (CI's has): the tests need no network
SHAKESPEARE = Path(os.environ.get("SHAKESPEARE_TXT", "no such file"))


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch):
    """requests sends even 127.0.0.1 through an http_proxy the shell may have set: the local server and the
    closed port must be reached directly, and nothing may leave the machine."""
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")


def read_bins(out_dir):
    vocab = json.loads((Path(out_dir) / "vocab.json").read_text(encoding="utf-8"))
    bins = [np.fromfile(Path(out_dir) / f"{s}.bin", dtype=vocab["dtype"]) for s in ("train", "val")]
    return vocab, *bins


def test_round_trip(corpus, data_dir):
    text = corpus.read_text(encoding="utf-8")
    vocab, train, val = read_bins(data_dir)
    assert vocab["chars"] == sorted(set(text))
    assert vocab["vocab_size"] == len(vocab["chars"])
    assert vocab["dtype"] == "uint16"
    assert vocab["source_sha256"] == hashlib.sha256(corpus.read_bytes()).hexdigest()
    assert (vocab["train_tokens"], vocab["val_tokens"]) == (len(train), len(val))
    assert len(train) == int(len(text) * 0.9) and len(train) + len(val) == len(text)
    decoded = "".join(vocab["chars"][i] for i in np.concatenate([train, val]))
    assert decoded == text


def test_windows_line_ends_and_a_byte_order_mark_stay_out_of_the_vocabulary(corpus, tmp_path, capsys):
    """A text saved on Windows (BOM, \\r\\n) prepares to the same ids as the same text saved elsewhere;
    so does one with old Macintosh line ends (\\r alone); a lone \\r in a text with \\n is kept."""
    text = corpus.read_text(encoding="utf-8")
    windows = tmp_path / "windows.txt"
    windows.write_bytes(b"\xef\xbb\xbf" + text.replace("\n", "\r\n").encode("utf-8"))
    assert prepare.main(["--input", str(windows), "--out_dir", str(tmp_path / "w")]) == 0
    assert f"note: {windows} has Windows line ends" in capsys.readouterr().out
    vocab, train, val = read_bins(tmp_path / "w")
    assert vocab["chars"] == sorted(set(text))
    assert "".join(vocab["chars"][i] for i in np.concatenate([train, val])) == text
    assert vocab["source_sha256"] == hashlib.sha256(windows.read_bytes()).hexdigest()  # the file as it is
    lone = tmp_path / "lone.txt"
    lone.write_text(text.replace("\n", "\r", 1), encoding="utf-8", newline="")
    assert prepare.read_text(lone)[0] == text.replace("\n", "\r", 1)
    mac = tmp_path / "mac.txt"  # old Macintosh line ends: \r alone, no \n anywhere
    mac.write_text(text.replace("\n", "\r"), encoding="utf-8", newline="")
    capsys.readouterr()
    assert prepare.read_text(mac)[0] == text
    assert f"note: {mac} has old Macintosh line ends" in capsys.readouterr().out


def test_a_file_name_that_is_not_utf8_is_prepared(tmp_path, capsys):
    """A Latin-1 café.txt (an old zip's): its name's odd byte cannot go into vocab.json as it is (a traceback,
    before): there it is a "?"."""
    name = os.fsdecode(b"caf\xe9.txt")
    try:
        (tmp_path / name).write_text("To be, or not to be\n" * 50)
    except (OSError, UnicodeError):
        pytest.skip("this file system takes UTF-8 names only")
    assert prepare.main(["--input", str(tmp_path / name), "--out_dir", str(tmp_path / "out")]) == 0
    vocab = json.loads((tmp_path / "out" / "vocab.json").read_text(encoding="utf-8"))
    assert vocab["source"] == "caf?.txt" and vocab["train_tokens"] == 900


def test_vocab_and_ids_match_python():
    text = "héllo, wörld! \n\t 日本語 🙂 zz"
    chars, ids = prepare.vocab_and_ids(text)
    assert chars == sorted(set(text))
    assert ids.tolist() == [chars.index(c) for c in text] == prepare.encode(text, chars)  # as its docstring says


def test_an_unknown_character_is_named_so_that_an_invisible_one_shows():
    with pytest.raises(UserError) as e:
        prepare.encode("Cafe\u0301 \u0430 ~", list("Cafe "))  # a combining accent, a Cyrillic a
    assert str(e.value) == ("the prompt has characters not in the model's vocabulary: '~' "
                            "'\u0301' (U+0301 COMBINING ACUTE ACCENT) 'а' (U+0430 CYRILLIC SMALL LETTER A) "
                            "— leave them out")
    with pytest.raises(UserError) as e:  # a prompt in another script: a line of 126,083 bytes, from 3,000 of them
        prepare.encode("".join(chr(c) for c in range(0x4E00, 0x4E00 + 3000)), list("Cafe "))
    assert str(e.value).endswith("(U+4E13 CJK UNIFIED IDEOGRAPH-4E13) and 2,980 more — leave them out")


@pytest.mark.parametrize("prompt, trained_on, how", [
    ("Cafe\u0301", "Caf\u00e9", "as one character each, as its training text has them; unicodedata.normalize('NFC'"),
    ("Caf\u00e9", "Cafe\u0301", "as a letter and its accent, as its training text has them; unicodedata.normalize("
                                "'NFD'")])
def test_an_accent_typed_apart_from_its_letter_is_told_how_to_type_it(prompt, trained_on, how):
    """é typed as e + U+0301 (a keyboard, or text pasted from a Mac's file names), where the text trained on has it
    as one character: told "leave them out" alone, the learner dropped the accent, and the word with it."""
    with pytest.raises(UserError) as e:
        prepare.encode(prompt, sorted(set(trained_on)))
    assert f"— leave them out (or type the prompt's accented letters {how}" in str(e.value)
    with pytest.raises(UserError) as e:  # a character that fits in neither form: no such hint
        prepare.encode(prompt + "~", sorted(set(trained_on)))
    assert str(e.value).endswith("— leave them out")


def test_wide_vocabulary_gets_uint32():
    # more than 65,536 distinct characters do not fit uint16 (surrogates are not characters)
    text = "".join(chr(c) for c in range(0x100, 0x100 + 70_000) if not 0xD800 <= c <= 0xDFFF)
    chars, ids = prepare.vocab_and_ids(text)
    assert ids.dtype == np.uint32 and len(chars) == len(text)
    assert ids.max() == len(chars) - 1


def test_the_vocabulary_is_printed_in_id_order_and_a_big_one_cut(tmp_path, capsys):
    text = tmp_path / "play.txt"
    text.write_text("to be, or not to be\n" * 60)
    assert prepare.main(["--input", str(text), "--out_dir", str(tmp_path / "small")]) == 0
    assert "the vocabulary, in id order: '\\n ,benort'\n" in capsys.readouterr().out  # \n first: its code is 10
    wide = tmp_path / "wide.txt"
    wide.write_text("".join(chr(c) for c in range(0x4E00, 0x4E00 + 500)) * 4)  # 500 distinct characters
    assert prepare.main(["--input", str(wide), "--out_dir", str(tmp_path / "wide")]) == 0
    shown = capsys.readouterr().out.split("the vocabulary, in id order: ")[1].splitlines()[0]
    assert shown == repr("".join(chr(c) for c in range(0x4E00, 0x4E00 + 100))) + " and 400 more"


@pytest.mark.skipif(not SHAKESPEARE.is_file(), reason="needs tiny-shakespeare's input.txt: set SHAKESPEARE_TXT")
def test_tiny_shakespeare_stats(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the default out_dir is relative
    assert prepare.main(["--input", str(SHAKESPEARE)]) == 0
    vocab, train, val = read_bins(tmp_path / "data/shakespeare")  # where `python train.py` looks
    assert (vocab["vocab_size"], len(train), len(val)) == (65, 1_003_854, 111_540)
    assert vocab["source_sha256"] == prepare.SHAKESPEARE_SHA256


def test_own_text_defaults_to_its_own_dir(corpus, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert prepare.main(["--input", str(corpus)]) == 0
    assert (tmp_path / "data/play/vocab.json").is_file()
    assert not (tmp_path / "data/shakespeare").exists()


def another_text(folder):
    """A text file unlike the corpus: its ids differ, and so does its hash."""
    path = folder / "other.txt"
    path.write_text("something else entirely. " * 100)
    return path


def test_same_text_again_is_fine_other_text_is_refused(corpus, tmp_path):
    out = tmp_path / "d"
    assert prepare.main(["--input", str(corpus), "--out_dir", str(out)]) == 0
    assert prepare.main(["--input", str(corpus), "--out_dir", str(out)]) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    other = another_text(tmp_path)
    with pytest.raises(UserError, match="already holds data prepared from a different text"):
        prepare.main(["--input", str(other), "--out_dir", str(out)])
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_a_prepare_stopped_before_its_vocab_json_may_run_again(corpus, tmp_path):
    """The bins are written first, vocab.json last: the same text finds its own bins (the same ids) and
    finishes; another text's ids would write over them, and are refused as another tool's would be."""
    out = tmp_path / "d"
    assert prepare.main(["--input", str(corpus), "--out_dir", str(out)]) == 0
    (out / "vocab.json").unlink()  # as a kill or a full disk between the bins and vocab.json leaves it
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    other = another_text(tmp_path)
    with pytest.raises(UserError, match="holds train.bin and val.bin, with other ids and no vocab.json"):
        prepare.main(["--input", str(other), "--out_dir", str(out)])
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert prepare.main(["--input", str(corpus), "--out_dir", str(out)]) == 0
    assert (out / "vocab.json").is_file()


def test_another_tool_s_bins_of_the_very_same_size_are_not_written_over(corpus, tmp_path):
    """Bins without a vocab.json are prepare.py's own only if they hold the same ids: the same size is not enough."""
    assert prepare.main(["--input", str(corpus), "--out_dir", str(tmp_path / "ours")]) == 0
    out = tmp_path / "d"
    out.mkdir()
    for name in ("train.bin", "val.bin"):
        (out / name).write_bytes(bytes(len((tmp_path / "ours" / name).read_bytes())))  # the size, but zeros
    with pytest.raises(UserError, match="holds train.bin and val.bin, with other ids and no vocab.json"):
        prepare.main(["--input", str(corpus), "--out_dir", str(out)])
    assert sorted(p.name for p in out.iterdir()) == ["train.bin", "val.bin"] and not any((out / "val.bin").read_bytes())


@pytest.mark.parametrize("content, message", [
    (b"abc\n" * 300 + b"\xff\xfe", r"not valid UTF-8 \(byte 1,200, line 301\)"),
    (b"text\x00with a NUL" * 100, "looks binary"),
    (b"too short\n", "too few to split"),
    (b"", "too few to split"),
], ids=["not-utf8", "binary", "short", "empty"])
def test_bad_input_files(tmp_path, content, message):
    path = tmp_path / "in.txt"
    path.write_bytes(content)
    with pytest.raises(UserError, match=message):
        prepare.main(["--input", str(path), "--out_dir", str(tmp_path / "out")])
    assert not (tmp_path / "out").exists()



def test_an_unreadable_input_or_a_full_disk_is_one_line(corpus, tmp_path, monkeypatch):
    with file_size_limit(1000):  # train.bin is 45 KB
        with pytest.raises(UserError, match=r"cannot write in .*out \(File too large\) — free some disk space"):
            prepare.main(["--input", str(corpus), "--out_dir", str(tmp_path / "out")])
    assert not (tmp_path / "out" / "vocab.json").exists()  # so no one takes the folder for prepared data

    def read_only(path, write):  # (as root, chmod cannot make a folder read-only)
        raise OSError(30, "Read-only file system")
    monkeypatch.setattr(data, "write_atomically", read_only)
    with pytest.raises(UserError) as refused:
        prepare.main(["--input", str(corpus), "--out_dir", str(tmp_path / "ro")])
    assert str(refused.value).endswith("ro (Read-only file system) — choose another --out_dir")
    monkeypatch.undo()

    def no_permission(path, limit):  # as root, chmod cannot take the permission away
        raise PermissionError(13, "Permission denied")
    monkeypatch.setattr(data, "read_at_most", no_permission)
    with pytest.raises(UserError, match=r"cannot read .*play.txt \(Permission denied\) — check its permissions"):
        prepare.main(["--input", str(corpus), "--out_dir", str(tmp_path / "other")])


def test_a_typo_in_data_dir_is_caught_but_another_name_is_not(tmp_path):
    for name in ("shakespeare", "notes"):  # prepared: a vocab.json is what marks one
        (tmp_path / name).mkdir()
        (tmp_path / name / "vocab.json").write_text("{}")
    (tmp_path / "shakespeares").mkdir()  # close, but not prepared
    def prepared_near(path):  # what load_vocab's "did you mean" offers
        return cli.near_miss(path, data.is_prepared)
    assert prepared_near(tmp_path / "shakespear") == tmp_path / "shakespeare"
    assert prepared_near(tmp_path / "poems") is None  # 0.6 alike to notes: another text, not a typo
    assert prepared_near(tmp_path / "nowhere" / "shakespear") is None  # no such parent folder


def test_a_text_of_exactly_the_fewest_characters_is_prepared(tmp_path):
    """The error says "give at least 1,000": 1,000 characters are enough, 999 are not."""
    path = tmp_path / "in.txt"
    path.write_text("ab\n" * 333 + "c")  # 1,000 characters
    assert prepare.main(["--input", str(path), "--out_dir", str(tmp_path / "d")]) == 0
    path.write_text("ab\n" * 333)
    with pytest.raises(UserError, match="has only 999 characters, too few to split into train and val — give at "
                                        "least 1,000$"):
        prepare.main(["--input", str(path), "--out_dir", str(tmp_path / "e")])


def test_missing_input(tmp_path):
    with pytest.raises(UserError, match="no such file"):
        prepare.main(["--input", str(tmp_path / "nope.txt")])


# ----------------------------------------------------------------------------
# The download, against a web server on localhost (no network needed)


@pytest.fixture
def server():
    """Serve `server.payload` at http://127.0.0.1:PORT/input.txt, with HTTP status `server.status`, and count the
    requests."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            httpd.hits += 1
            self.send_response(httpd.status)
            self.send_header("Content-Length", str(len(httpd.payload)))
            self.end_headers()
            self.wfile.write(httpd.payload)

        def log_message(self, *args):
            pass

    httpd = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    httpd.hits, httpd.status, httpd.payload = 0, 200, b"To be, or not to be, that is the question.\n" * 40
    httpd.url = f"http://127.0.0.1:{httpd.server_port}/input.txt"
    # (a short poll: shutdown() waits for the loop to look, 0.5 s a test by default)
    thread = threading.Thread(target=httpd.serve_forever, kwargs=dict(poll_interval=0.02), daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()
    thread.join()


def passes_for_shakespeare(monkeypatch, text):
    """prepare.py takes text (bytes) for tiny-shakespeare: its sha256 and size are the ones it checks."""
    monkeypatch.setattr(prepare, "SHAKESPEARE_SHA256", hashlib.sha256(text).hexdigest())
    monkeypatch.setattr(prepare, "SHAKESPEARE_BYTES", len(text))


def test_download_verifies_and_skips_a_verified_file(server, tmp_path):
    dest = tmp_path / "input.txt"
    sha = hashlib.sha256(server.payload).hexdigest()
    prepare.download(server.url, dest, sha, len(server.payload))
    assert dest.read_bytes() == server.payload and server.hits == 1
    prepare.download(server.url, dest, sha, len(server.payload))
    assert server.hits == 1  # already there and verified: no second request


def test_download_with_wrong_checksum_writes_nothing(server, tmp_path):
    with pytest.raises(UserError, match="failed verification"):
        prepare.download(server.url, tmp_path / "input.txt", "0" * 64, len(server.payload))
    assert list(tmp_path.iterdir()) == []  # not the file, not a temp file


def test_a_download_larger_than_the_file_is_stopped_once_past_its_size(server, tmp_path):
    """A wrong --url's file of gigabytes was written whole, before its size was checked (one that never ends, till the
    disk was full)."""
    server.payload *= 40  # 40 x 1,760 bytes: the expected size, 1,000 bytes, is passed in the first 64 KiB read
    with pytest.raises(UserError, match=r"sent more than the expected file's 1,000 bytes, so it is another file; the "
                                        r"download was stopped, and nothing was written — check --url"):
        prepare.download(server.url, tmp_path / "input.txt", "0" * 64, 1000)
    assert list(tmp_path.iterdir()) == []


def test_download_does_not_replace_a_foreign_file(server, tmp_path):
    dest = tmp_path / "input.txt"
    dest.write_text("my own notes")
    with pytest.raises(UserError, match="is not the expected file"):
        prepare.download(server.url, dest, "0" * 64, 10)
    assert dest.read_text() == "my own notes" and server.hits == 0


def test_download_failure_names_the_url(monkeypatch, tmp_path, capsys):
    waits = []
    monkeypatch.setattr("time.sleep", waits.append)  # (for the whole process) skip the backoff waits, and note them
    with socket.socket() as closed:  # a port bound but not listening: a connection to it is refused
        closed.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{closed.getsockname()[1]}/input.txt"
        with pytest.raises(UserError, match=f"could not download {re.escape(url)} \\(ConnectionError\\) "
                                            f"after 3 tries .*--input"):
            prepare.main(["--url", url, "--out_dir", str(tmp_path / "d")])
    assert not (tmp_path / "d").exists()  # not even an empty folder is left behind
    assert waits == [1, 2]  # 3 tries: 1 s, then 2 s, between them
    assert capsys.readouterr().err.count("download failed (ConnectionError); trying again in ") == 2


def test_an_http_error_is_tried_again_then_one_line(server, monkeypatch, tmp_path):
    """A 503 (a busy server) is a failed try, never taken for the text: here its body is the very text the
    download expects, so only the status can refuse it. A 404 (a mirror's wrong path, say) is not tried again."""
    monkeypatch.setattr("time.sleep", lambda s: None)
    server.status = 503
    with pytest.raises(UserError, match=r"could not download .*input\.txt \(HTTPError\) after 3 tries"):
        prepare.download(server.url, tmp_path / "input.txt", hashlib.sha256(server.payload).hexdigest(),
                         len(server.payload))
    assert server.hits == 3 and list(tmp_path.iterdir()) == []
    server.status = 404
    with pytest.raises(UserError, match=r"input\.txt answered 404 \(Not Found\) — fix --url"):
        prepare.download(server.url, tmp_path / "input.txt", hashlib.sha256(server.payload).hexdigest(),
                         len(server.payload))
    assert server.hits == 4 and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("url", ["", "notaurl", "file:///etc/passwd", "file://localhost/etc/passwd", "https:/x",
                                 "http://[bad", "http://host:abc/"])
def test_a_url_no_try_could_fetch_is_refused_at_once(url, tmp_path):
    """Before, these were tried 3 times and blamed on the connection (or, for the last two, a traceback)."""
    with pytest.raises(UserError, match=f"^{re.escape(repr(url))} is not an address to download from"):
        prepare.main(["--url", url, "--out_dir", str(tmp_path / "d")])
    assert not (tmp_path / "d").exists()


def test_a_download_into_another_text_s_data_is_refused_before_it_starts(corpus, server, tmp_path, monkeypatch):
    """`python prepare.py --out_dir d`, where d holds your own text's data: nothing is fetched, and no input.txt
    lands beside that data."""
    # the server's text passes for tiny-shakespeare: without the check, the download would succeed
    passes_for_shakespeare(monkeypatch, server.payload)
    out = tmp_path / "d"
    assert prepare.main(["--input", str(corpus), "--out_dir", str(out)]) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    with pytest.raises(UserError, match="already holds data prepared from a different text"):
        prepare.main(["--url", server.url, "--out_dir", str(out)])
    assert server.hits == 0 and {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_main_downloads_then_encodes(server, tmp_path, monkeypatch):
    passes_for_shakespeare(monkeypatch, server.payload)
    out = tmp_path / "d"
    assert prepare.main(["--url", server.url, "--out_dir", str(out)]) == 0
    vocab, train, val = read_bins(out)
    assert len(train) + len(val) == len(server.payload)
    assert (out / "input.txt").read_bytes() == server.payload


def test_shakespeare_prepared_from_a_local_copy_needs_no_download(server, tmp_path, monkeypatch, capsys):
    """The README's `python prepare.py`, run again where tiny-shakespeare was prepared with
    --input (no network): the data is there, so nothing is fetched or written."""
    passes_for_shakespeare(monkeypatch, server.payload)
    local, out = tmp_path / "shakespeare.txt", tmp_path / "d"
    local.write_bytes(server.payload)
    assert prepare.main(["--input", str(local), "--out_dir", str(out)]) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    capsys.readouterr()
    assert prepare.main(["--url", server.url, "--out_dir", str(out)]) == 0
    said = f"{out} already holds tiny-shakespeare, prepared and whole; nothing to do\n"
    assert capsys.readouterr().out.startswith(said)
    assert server.hits == 0 and {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_an_edited_text_is_not_prepared_over_its_old_data(corpus, tmp_path):
    text, out = tmp_path / "play.txt", tmp_path / "d"
    text.write_text(corpus.read_text())
    assert prepare.main(["--input", str(text), "--out_dir", str(out)]) == 0
    with open(text, "a") as f:
        f.write("ROMEO:\nOne more line.\n")
    with pytest.raises(UserError, match=re.escape(f"{out} already holds data prepared from a different text "
                                                  f"(play.txt; an edited file counts as different) — ")):
        prepare.main(["--input", str(text), "--out_dir", str(out)])


def test_a_foreign_vocab_json_is_kept_and_the_advice_works(corpus, tmp_path, capsys):
    """prepare.py cannot tell which text a vocab.json it did not write belongs to: it refuses to
    write over it, and the error's advice (move it away, prepare again) gets the folder prepared."""
    out = tmp_path / "d"
    out.mkdir()
    (out / "vocab.json").write_text("garbage")
    argv = ["--input", str(corpus), "--out_dir", str(out)]
    advice = "move it away, then run `python prepare.py --input YOUR_TEXT_FILE --out_dir "
    with pytest.raises(UserError, match=re.escape(f"{out / 'vocab.json'} was not written by prepare.py — {advice}")):
        prepare.main(argv)
    assert (out / "vocab.json").read_text() == "garbage"
    (out / "vocab.json").unlink()
    assert prepare.main(argv) == 0 and data.load_data(out)[0]["format"] == data.VOCAB_FORMAT


def test_prepared_data_cut_short_is_made_whole_again(server, tmp_path, monkeypatch, capsys):
    """load_data says to run prepare.py again for damaged bins, with the command (no --input for
    tiny-shakespeare's, wherever it is): that run must not take the folder as prepared and do nothing."""
    passes_for_shakespeare(monkeypatch, server.payload)
    monkeypatch.setattr(data, "SHAKESPEARE_SHA256", prepare.SHAKESPEARE_SHA256)  # (for the refusal's command)
    out = tmp_path / "d"
    assert prepare.main(["--url", server.url, "--out_dir", str(out)]) == 0
    whole = (out / "val.bin").read_bytes()
    (out / "input.txt").unlink()  # as if prepared from a local copy: the text must come again
    with open(out / "val.bin", "r+b") as f:
        f.truncate(10)
    with pytest.raises(UserError, match=re.escape(f"run `python prepare.py --out_dir {out}` again (offline: ")):
        data.load_data(out)
    capsys.readouterr()
    assert prepare.main(["--url", server.url, "--out_dir", str(out)]) == 0
    assert "nothing to do" not in capsys.readouterr().out and server.hits == 2
    assert (out / "val.bin").read_bytes() == whole


def test_damaged_data_is_told_the_command_for_its_own_text(tmp_path, monkeypatch):
    """again(): vocab.json says which text the folder holds, and so which command prepares it again; a text
    of your own in the default folder must not be sent to the download, which refuses that folder."""
    monkeypatch.chdir(tmp_path)
    shakespeare, mine = {"source_sha256": data.SHAKESPEARE_SHA256}, {"source_sha256": "0" * 64}
    assert data.again(data.DEFAULT_DATA_DIR, shakespeare) == (
        "run `python prepare.py` again (offline: with --input and your copy of its input.txt)")
    assert data.again("other dir", shakespeare).startswith("run `python prepare.py --out_dir 'other dir'` again")
    for folder in (data.DEFAULT_DATA_DIR, "other dir"):
        assert data.again(folder, mine) == (
            f"run `python prepare.py --input YOUR_TEXT_FILE --out_dir {shlex.quote(folder)}` again")


def test_the_default_folder_needs_no_flags_to_train():
    from machinery.data import DEFAULT_DATA_DIR, next_command
    assert next_command(DEFAULT_DATA_DIR) == ["next: python train.py"]  # where train.py looks by default


def test_the_printed_next_command_works_as_printed(corpus, run_dir, tmp_path, monkeypatch, capsys):
    """After the Shakespeare set-up, out/ holds a run; the command prepare.py prints for your
    own text must train, pasted as it is, even with a space in the file's name."""
    import shlex
    import shutil

    import train
    from conftest import TINY
    monkeypatch.chdir(tmp_path)
    shutil.copytree(run_dir, tmp_path / "out")  # the set-up's run
    shutil.copy(corpus, tmp_path / "my notes.txt")
    assert prepare.main(["--input", "my notes.txt"]) == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert line.startswith("next: python train.py --data_dir 'data/my notes' --out_dir 'out/my notes'")
    argv = shlex.split(line.removeprefix("next: "))[2:]
    assert train.main(argv + TINY) == 0  # the printed flags, at the tiny test size
    assert (tmp_path / "out/my notes/best.pt").is_file()


def test_a_piped_text_is_read(corpus, tmp_path):
    import subprocess
    import sys
    p = subprocess.run([sys.executable, str(Path(prepare.__file__)), "--input", "/dev/stdin", "--out_dir",
                        str(tmp_path / "piped")], input=corpus.read_bytes(), capture_output=True)  # a pipe
    assert p.returncode == 0, p.stderr.decode()
    vocab, train, val = read_bins(tmp_path / "piped")
    assert len(train) + len(val) == len(corpus.read_text())


def test_a_small_text_gets_a_command_that_fits_its_size(tmp_path, capsys):
    """The CPU preset's 800 steps would read a 45,000-character text 36 times and learn it by heart:
    the printed command reads it about 14 times, with dropout, and a note says why."""
    (tmp_path / "small.txt").write_text(("To be, or not to be, that is the question. " * 1200)[:50_000])
    assert prepare.main(["--input", str(tmp_path / "small.txt"), "--out_dir", str(tmp_path / "small")]) == 0
    note, line = capsys.readouterr().out.strip().splitlines()[-2:]
    assert note.startswith("note: the text is small (45,000 training characters): the CPU preset's 800 steps "
                           "would read it 36 times") and "about 14 times, with dropout" in note
    assert line.endswith("--max_iters 300 --eval_interval 75 --eval_iters 10 --dropout 0.1")  # val: 5,000


def test_the_printed_command_trains_into_a_free_run_folder(tmp_path, capsys, monkeypatch):
    """An edited text, prepared again after its data folder was deleted: out/<name> holds the old text's run,
    which train.py would refuse to overwrite, so the command names out/<name>-2."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes.txt").write_text("To be, or not to be, that is the question. " * 4000)
    (tmp_path / "out" / "notes").mkdir(parents=True)
    (tmp_path / "out" / "notes" / "latest.pt").write_bytes(b"the old text's run")
    assert prepare.main(["--input", "notes.txt"]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == \
        "next: python train.py --data_dir data/notes --out_dir out/notes-2"


def test_a_tiny_text_gets_a_warmup_that_fits_its_run(tmp_path, capsys):
    """5,000 characters: 50 steps, which the preset's 50-step warmup would fill: a tenth of them instead."""
    (tmp_path / "tiny.txt").write_text(("To be, or not to be, that is the question. " * 120)[:5_000])
    assert prepare.main(["--input", str(tmp_path / "tiny.txt"), "--out_dir", str(tmp_path / "tiny")]) == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert line.endswith("--max_iters 50 --eval_interval 10 --eval_iters 10 --dropout 0.1 --warmup_iters 5")


def test_the_printed_evaluations_divide_the_run(tmp_path, capsys):
    """250 steps: an interval of 250 // 4 = 62 would evaluate at 248 and again at 250, so 50 (5 evaluations)."""
    (tmp_path / "mid.txt").write_text(("To be, or not to be, that is the question. " * 1000)[:41_000])
    assert prepare.main(["--input", str(tmp_path / "mid.txt"), "--out_dir", str(tmp_path / "mid")]) == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert "--max_iters 250 --eval_interval 50 " in line


def test_vocab_json_edited_by_hand_is_refused_before_it_is_used(data_dir, tmp_path):
    """Values prepare.py never writes would fail later, far from their cause: at sampling, or in
    the line that reports them."""
    good = json.loads((data_dir / "vocab.json").read_text())
    assert not [key for key, fits in data.vocab_checks(good).items() if not fits]
    chars = good["chars"]
    for edit, bad in [({"chars": chars + chars[:1]}, ["chars"]),  # a character twice
                      ({"chars": chars[::-1]}, ["chars"]),  # prepare.py's are sorted; reversed, "a" decodes as "z"
                      ({"chars": None}, ["chars"]), ({"chars": []}, ["chars"]),
                      ({"chars": ["ab"] + chars[1:]}, ["chars"]),
                      ({"vocab_size": len(chars) + 1}, ["vocab_size"]), ({"vocab_size": True}, ["vocab_size"]),
                      ({"dtype": "float64"}, ["dtype"]), ({"dtype": None}, ["dtype"]),
                      ({"train_tokens": -1, "val_tokens": 2.0}, ["train_tokens", "val_tokens"]),
                      ({"train_tokens": 0}, ["train_tokens"])]:  # (prepare.py refuses a text too short for both)
        checks = data.vocab_checks(good | edit)
        assert [key for key, fits in checks.items() if not fits] == bad, edit
    for name in ("train.bin", "val.bin"):  # (a copy: data_dir is shared by other tests)
        (tmp_path / name).write_bytes((data_dir / name).read_bytes())
    (tmp_path / "vocab.json").write_text(json.dumps(good | {"chars": None}))
    with pytest.raises(cli.UserError, match="has a chars that prepare.py would not write"):
        data.load_data(tmp_path)
    for version in (2, True, 1.0, "1"):  # (True == 1.0 == 1 in Python)
        (tmp_path / "vocab.json").write_text(json.dumps(good | {"version": version, "dtype": None}))
        with pytest.raises(cli.UserError, match=f"is vocab.json version {re.escape(repr(version))}, where"):
            data.load_data(tmp_path)  # said before its keys: another version's may differ


def test_exactly_65536_characters_still_fit_uint16():
    """ids run 0 .. 65,535: two bytes each, half of uint32's file."""
    codepoints = [c for c in range(0x100, 0x100 + 70_000) if not 0xD800 <= c <= 0xDFFF][:2 ** 16]
    chars, ids = prepare.vocab_and_ids("".join(map(chr, codepoints)))
    assert len(chars) == 2 ** 16 and ids.dtype == np.uint16 and ids.max() == 2 ** 16 - 1


def test_with_no_newline_in_the_text_samples_start_from_the_vocabulary_s_first_character():
    assert prepare.start_char(sorted(set("abc de fgh"))) == " "
    assert prepare.start_char(sorted(set("abc\nde"))) == "\n"


def test_a_small_text_s_evaluation_reads_its_val_split_at_least_four_times(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "small").mkdir()
    vocab = {"format": data.VOCAB_FORMAT, "version": data.VOCAB_VERSION, "chars": ["a", "b"], "vocab_size": 2,
             "dtype": "uint16", "train_tokens": 54_000, "val_tokens": 6_000}
    (tmp_path / "small" / "vocab.json").write_text(json.dumps(vocab))
    line = data.next_command("small")[-1]
    assert "--eval_iters 12 " in line, line  # 4 x 6,000 val characters in windows of 32 x 64: 11.7 batches, rounded up


def test_a_file_of_the_right_size_but_other_bytes_is_not_taken_for_the_download(tmp_path, capsys):
    """The check of a file already there is its sha256, not only its size (a port nothing listens on: no download)."""
    dest = tmp_path / "input.txt"
    dest.write_bytes(b"b" * 100)
    expected = hashlib.sha256(b"a" * 100).hexdigest()
    with pytest.raises(UserError, match="exists but is not the expected file"):
        data.download("http://127.0.0.1:9/input.txt", dest, expected, 100)
    dest.write_bytes(b"a" * 100)
    data.download("http://127.0.0.1:9/input.txt", dest, expected, 100)
    assert "already here and verified" in capsys.readouterr().out


def test_only_prepare_s_own_files_are_refused_as_a_text_or_a_data_dir(corpus, data_dir, tmp_path):
    """A prepared folder's train.bin given as the text, or as --data_dir, is a slip; a text of the user's that is
    named vocab.json, or sits beside a vocab.json of the user's, is not."""
    with pytest.raises(UserError, match="is what prepare.py wrote, not a text"):
        data.read_text(data_dir / "train.bin")
    with pytest.raises(UserError, match=f"is a file of a prepared folder — give the folder: --data_dir {data_dir}"):
        data.load_vocab(data_dir / "val.bin")
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "vocab.json").write_text(corpus.read_text()[:5000])  # a text, whatever its name
    assert data.read_text(mine / "vocab.json")[0].startswith(corpus.read_text()[:20])
    (mine / "play.txt").write_text("play")
    with pytest.raises(UserError, match="is a file, not a prepared folder — prepare it first"):
        data.load_vocab(mine / "play.txt")


def test_an_input_txt_that_is_not_tiny_shakespeare_says_so(corpus, tmp_path, monkeypatch, capsys):
    """A copy cut short (or edited) is prepared as a text of one's own, in data/input/, where `python train.py` alone
    would not find it: prepare.py says so, where an input.txt is most likely meant to be tiny-shakespeare."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "input.txt").write_text(corpus.read_text(encoding="utf-8"), encoding="utf-8")
    (tmp_path / "notes.txt").write_text(corpus.read_text(encoding="utf-8"), encoding="utf-8")
    assert prepare.main(["--input", "input.txt"]) == 0
    assert capsys.readouterr().out.startswith("note: input.txt is named like tiny-shakespeare's file, but its bytes "
                                              "differ (sha256), so it is prepared as a text of your own")
    assert (tmp_path / "data" / "input" / "vocab.json").is_file()
    assert prepare.main(["--input", "notes.txt"]) == 0
    assert "tiny-shakespeare" not in capsys.readouterr().out  # any other name: plainly a text of one's own


def test_a_shakespeare_txt_of_other_text_does_not_take_tiny_shakespeare_s_folder(corpus, tmp_path, monkeypatch,
                                                                                 capsys):
    """Found by a hunt for data bugs: Shakespeare's complete works saved as shakespeare.txt went to data/shakespeare/,
    which `python train.py` alone reads, and the download of tiny-shakespeare was then refused there."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "Shakespeare.txt").write_text(corpus.read_text(encoding="utf-8"), encoding="utf-8")
    assert prepare.main(["--input", "Shakespeare.txt"]) == 0
    said = capsys.readouterr().out
    assert said.startswith("note: Shakespeare.txt is named like tiny-shakespeare's folder")
    assert "-> data/Shakespeare-own/" in said
    assert [p.name for p in (tmp_path / "data").iterdir()] == ["Shakespeare-own"]


@pytest.mark.parametrize("encoding, said", [("utf-32", "is UTF-32, not UTF-8"),
                                            ("utf-32-le", "looks like UTF-32 (utf-32le), not UTF-8"),
                                            ("utf-32-be", "looks like UTF-32 (utf-32be), not UTF-8")])
def test_a_utf32_text_is_named_as_such(tmp_path, encoding, said):
    """Found by a hunt for data bugs: UTF-32's byte-order mark begins with UTF-16's, so a UTF-32 text was called
    UTF-16, and the iconv command offered made a file of NUL bytes."""
    text = tmp_path / "wide.txt"
    text.write_bytes(("To be, or not to be\n" * 60).encode(encoding))
    with pytest.raises(UserError, match=re.escape(f"{said} — re-save it as UTF-8, for example: iconv -f utf-32")):
        data.read_text(text)
    # (a review: UTF-16 of ASCII has NUL as every fourth byte too, and text of control characters decodes as UTF-32)
    text.write_bytes(("a\nb\nc\nd\n" * 300).encode(encoding.replace("32", "16")))
    with pytest.raises(UserError, match=" UTF-16"):
        data.read_text(text)


def test_a_text_named_like_no_file_of_tiny_shakespeare_s_gets_no_note(corpus, tmp_path, monkeypatch, capsys):
    """(A review: the note's check read the folder's name, so notes-own.txt was called tiny-shakespeare's.)"""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes-own.txt").write_text(corpus.read_text(encoding="utf-8"), encoding="utf-8")
    assert prepare.main(["--input", "notes-own.txt"]) == 0
    assert "tiny-shakespeare" not in capsys.readouterr().out and (tmp_path / "data" / "notes-own").is_dir()
