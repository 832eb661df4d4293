"""The hostile-input campaign: bad files, exports, configs, databases and models, through the real CLI.

Each case runs `python -m tuilab …` in a fresh lab and checks what a user
would see: a non-zero exit, exactly one line on stderr that names what was
wrong (file, line, key or id), no traceback, and every file in the test's
folder — inputs, the lab database, its -wal/-shm — byte-identical
afterwards, with nothing created (no run rows, no run folders, no database
where there was none). Only a case's declared output may change.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import stat
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tuilab.store.db import open_db

FIXTURES = Path(__file__).parents[1] / "fixtures" / "data"
TIMEOUT_S = 30


@dataclass
class Lab:
    """A test folder: `home` (a lab with pairs and runs in db/lab.db) and room for hostile files."""

    root: Path
    home: Path
    tiny_model: Path

    @property
    def db(self) -> Path:
        return self.home / "db" / "lab.db"

    def file(self, name: str, content: str | bytes) -> Path:
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, str):
            path.write_text(content, encoding="utf-8")
        else:
            path.write_bytes(content)
        return path

    def sqlite(self, name: str, script: str) -> Path:
        path = self.root / name
        conn = sqlite3.connect(path)
        conn.executescript(script)
        conn.close()
        return path


@dataclass
class Spec:
    argv: list[str]
    names: list[str]  # what the one stderr line must mention
    prefix: list[str] = field(default_factory=list)  # e.g. setpriv, to drop root's read-anything


@dataclass
class Case:
    klass: str
    name: str
    build: Callable[[Lab], Spec]
    marks: list = field(default_factory=list)


CASES: list[Case] = []


def case(klass: str, name: str, *marks):
    def deco(fn: Callable[[Lab], Spec]) -> Callable[[Lab], Spec]:
        CASES.append(Case(klass, name, fn, list(marks)))
        return fn

    return deco


def data(*argv: str) -> list[str]:
    return ["data", *argv]


# ---------------------------------------------------------------- data files


@case("data", "trl-first-row-lacks-rejected")
def _(lab):
    f = lab.file("pairs.jsonl", '{"prompt": "p", "chosen": "a"}\n{"prompt": "q", "chosen": "a", "rejected": "b"}\n')
    return Spec(data("import", str(f)), ["pairs.jsonl:1:", "rejected"])


@case("data", "prompt-row-then-trl-rows")
def _(lab):
    f = lab.file("mix.jsonl", '{"prompt": "p"}\n{"prompt": "q", "chosen": "a", "rejected": "b"}\n')
    return Spec(data("import", str(f)), ["mix.jsonl:2:"])


@case("data", "trl-row-then-comparison-row")
def _(lab):
    f = lab.file("mix2.jsonl", '{"prompt": "q", "chosen": "a", "rejected": "b"}\n'
                 '{"prompt": "q", "left": "a", "right": "b", "decision": "left"}\n')
    return Spec(data("import", str(f)), ["mix2.jsonl:2:"])


@case("data", "plain-text-then-json-lines-txt")
def _(lab):
    f = lab.file("mixed.txt", 'Tell me a joke\n{"prompt": "q", "chosen": "a", "rejected": "b"}\n')
    return Spec(data("import", str(f)), ["mixed.txt:2:"])


@case("data", "plain-text-then-json-lines-noext")
def _(lab):
    f = lab.file("mixed", 'Tell me a joke\n{"prompt": "what"}\n{"prompt": "why"}\n')
    return Spec(data("import", str(f)), ["mixed:2:"])


@case("data", "plain-text-then-json-lines-jsonl")
def _(lab):
    f = lab.file("mixed.jsonl", 'Tell me a joke\n{"prompt": "what"}\n')
    return Spec(data("import", str(f)), ["mixed.jsonl:1:"])


@case("data", "json-lines-then-plain-text")
def _(lab):
    f = lab.file("mixed3", '{"prompt": "what"}\nTell me a joke\n')
    return Spec(data("import", str(f)), ["mixed3:2:"])


@case("data", "csv-unterminated-quote")
def _(lab):
    f = lab.file("p.csv", 'prompt\nfirst\n"second, never closed\nthird\nfourth\n')
    return Spec(data("import", str(f)), ["p.csv:3:", "quote"])


@case("data", "csv-stray-quote-in-field")
def _(lab):
    f = lab.file("q.csv", 'prompt,split\nfine,train\n"bro"ken,train\n')
    return Spec(data("import", str(f)), ["q.csv:3:"])


@case("data", "csv-no-prompt-column")
def _(lab):
    f = lab.file("n.csv", "question_text,answer\nhi,there\n")
    return Spec(data("import", str(f)), ["n.csv:1:", "prompt column"])


@case("data", "csv-nul-byte")
def _(lab):
    f = lab.file("nul.csv", b"prompt\nhello\x00world\n")
    return Spec(data("import", str(f)), ["nul.csv:2:", "NUL"])


@case("data", "nul-bytes-4096")
def _(lab):
    f = lab.file("zeros.txt", b"\x00" * 4096)
    return Spec(data("import", str(f)), ["zeros.txt:1:", "NUL"])


@case("data", "nul-bytes-no-extension")
def _(lab):
    f = lab.file("zeros", b"\x00" * 4096)
    return Spec(data("import", str(f)), ["zeros:1:", "NUL"])


@case("data", "nul-in-jsonl-line")
def _(lab):
    f = lab.file("nul.jsonl", b'{"prompt": "ok"}\n{"prompt": "b\x00ad"}\n')
    return Spec(data("import", str(f)), ["nul.jsonl:2:", "NUL"])


@case("data", "escaped-nul-in-json-string")
def _(lab):
    f = lab.file("esc.jsonl", '{"prompt": "ok"}\n{"prompt": "b\\u0000ad"}\n')
    return Spec(data("import", str(f)), ["esc.jsonl:2:", "prompt"])


@case("data", "escape-and-bell-bytes-in-text")
def _(lab):
    f = lab.file("ctl.txt", b"fine prompt\nred \x1b[31malert\x07\n")
    return Spec(data("import", str(f)), ["ctl.txt:2:", "control"])


@case("data", "control-byte-in-trl-chosen")
def _(lab):
    f = lab.file("ctl.jsonl", b'{"prompt": "q", "chosen": "a\x08b", "rejected": "c"}\n')
    return Spec(data("import", str(f)), ["ctl.jsonl:1:", "control byte 0x08"])


@case("data", "huge-prompt-field")
def _(lab):
    f = lab.file("huge.jsonl", json.dumps({"prompt": "x" * 2_000_000}) + "\n")
    return Spec(data("import", str(f)), ["huge.jsonl:1:", "prompt", "--max-field-chars"])


@case("data", "huge-text-line")
def _(lab):
    f = lab.file("huge.txt", "y" * 3_000_000 + "\n")
    return Spec(data("import", str(f)), ["huge.txt:1:", "--max-field-chars"])


@case("data", "huge-rejected-in-trl")
def _(lab):
    f = lab.file("hugepair.jsonl", json.dumps({"prompt": "q", "chosen": "a", "rejected": "z" * 1_500_000}) + "\n")
    return Spec(data("import", str(f)), ["hugepair.jsonl:1:", "rejected"])


@case("data", "empty-jsonl")
def _(lab):
    return Spec(data("import", str(lab.file("empty.jsonl", ""))), ["empty.jsonl", "no records"])


@case("data", "empty-txt")
def _(lab):
    return Spec(data("import", str(lab.file("empty.txt", ""))), ["empty.txt", "no records"])


@case("data", "blank-lines-only")
def _(lab):
    return Spec(data("import", str(lab.file("blank.txt", "\n   \n\t\n"))), ["blank.txt", "no records"])


@case("data", "csv-header-only")
def _(lab):
    return Spec(data("import", str(lab.file("head.csv", "prompt\n"))), ["head.csv", "no records"])


@case("data", "latin1-text")
def _(lab):
    f = lab.file("latin.txt", "caf\u00e9 au lait\n".encode("latin-1"))
    return Spec(data("import", str(f)), ["latin.txt:1:", "UTF-8"])


@case("data", "utf16-jsonl")
def _(lab):
    f = lab.file("u16.jsonl", '{"prompt": "hi"}\n'.encode("utf-16"))
    return Spec(data("import", str(f)), ["u16.jsonl:1:"])


@case("data", "gzip-as-jsonl")
def _(lab):
    import gzip

    f = lab.file("pairs.jsonl.gz", gzip.compress(b'{"prompt": "hi"}\n'))
    return Spec(data("import", str(f)), ["pairs.jsonl.gz"])


@case("data", "png-as-txt")
def _(lab):
    f = lab.file("img.txt", b"\x89PNG\r\n\x1a\n" + bytes(range(256)))
    return Spec(data("import", str(f)), ["img.txt:1:"])


@case("data", "directory-instead-of-file")
def _(lab):
    d = lab.root / "folder.jsonl"
    d.mkdir()
    return Spec(data("import", str(d)), ["folder.jsonl", "directory"])


@case("data", "missing-file")
def _(lab):
    return Spec(data("import", str(lab.root / "nowhere.jsonl")), ["nowhere.jsonl"])


@case("data", "fifo-instead-of-file")
def _(lab):
    p = lab.root / "pipe.jsonl"
    os.mkfifo(p)
    return Spec(data("import", str(p)), ["pipe.jsonl", "regular file"])


@case("data", "device-instead-of-file")
def _(lab):
    p = lab.root / "zero.txt"
    os.symlink("/dev/zero", p)
    return Spec(data("import", str(p)), ["zero.txt", "regular file"])


@case("data", "unreadable-file")
def _(lab):
    f = lab.file("secret.jsonl", '{"prompt": "hi"}\n')
    f.chmod(0)
    # Root reads a chmod-000 file anyway; without CAP_DAC_OVERRIDE it cannot.
    prefix = ["setpriv", "--bounding-set=-dac_override,-dac_read_search"] if os.geteuid() == 0 else []
    if prefix and not shutil.which("setpriv"):
        pytest.skip("running as root without setpriv: a chmod-000 file stays readable")
    return Spec(data("import", str(f)), ["secret.jsonl", "permission"], prefix=prefix)


@case("data", "json-array-file")
def _(lab):
    f = lab.file("arr.json", '[{"prompt": "a"}, {"prompt": "b"}]\n')
    return Spec(data("import", str(f)), ["arr.json:1:", "JSON Lines"])


@case("data", "truncated-json-last-line")
def _(lab):
    f = lab.file("trunc.jsonl", '{"prompt": "a"}\n{"prompt": "b"}\n{"prompt": "c\n')
    return Spec(data("import", str(f)), ["trunc.jsonl:3:"])


@case("data", "json-scalar-lines")
def _(lab):
    f = lab.file("nums.jsonl", "1\n2\n3\n")
    return Spec(data("import", str(f)), ["nums.jsonl:1:"])


@case("data", "trl-format-forced-on-prompts")
def _(lab):
    f = lab.file("prompts.jsonl", '{"prompt": "a"}\n')
    return Spec(data("import", str(f), "--format", "trl"), ["prompts.jsonl:1:", "chosen"])


@case("data", "bad-split-value")
def _(lab):
    f = lab.file("split.jsonl", '{"prompt": "a", "split": "validation"}\n')
    return Spec(data("import", str(f)), ["split.jsonl:1:", "split"])


@case("data", "unknown-format-flag")
def _(lab):
    f = lab.file("ok.jsonl", '{"prompt": "a"}\n')
    return Spec(data("import", str(f), "--format", "parquet"), ["--format", "parquet"])


@case("data", "import-without-file-argument")
def _(lab):
    return Spec(data("import"), ["file"])


@case("data", "trl-chosen-equals-rejected")
def _(lab):
    f = lab.file("same.jsonl", '{"prompt": "q", "chosen": "a", "rejected": "a"}\n')
    return Spec(data("import", str(f)), ["same.jsonl:1:", "same"])


@case("data", "hh-without-assistant-turn")
def _(lab):
    f = lab.file("hh.jsonl", json.dumps({"chosen": "\n\nHuman: hi\n\nAssistant: a",
                                          "rejected": "\n\nHuman: hi there"}) + "\n")
    return Spec(data("import", str(f), "--format", "hh"), ["hh.jsonl:1:", "Assistant"])


# ---------------------------------------------------------------- exports

def export(lab: Lab, target: Path | str, *flags: str) -> list[str]:
    return data("export", str(target), "--format", "trl", *flags)


@case("export", "symlink-to-elsewhere")
def _(lab):
    victim = lab.file("elsewhere/victim.txt", "keep me\n")
    link = lab.root / "out" / "pairs.jsonl"
    link.parent.mkdir()
    link.symlink_to(victim)
    return Spec(export(lab, link), ["pairs.jsonl", "symlink"])


@case("export", "fifo")
def _(lab):
    p = lab.root / "fifo.jsonl"
    os.mkfifo(p)
    return Spec(export(lab, p), ["fifo.jsonl", "FIFO"])


@case("export", "character-device")
def _(lab):
    p = lab.root / "null-device"
    os.mknod(p, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    return Spec(export(lab, p), ["null-device", "device"])


@case("export", "symlink-to-dev-null")
def _(lab):
    p = lab.root / "devnull.jsonl"
    p.symlink_to("/dev/null")
    return Spec(export(lab, p), ["devnull.jsonl"])


@case("export", "read-only-file")
def _(lab):
    p = lab.file("ro.jsonl", "precious\n")
    p.chmod(0o444)
    return Spec(export(lab, p), ["ro.jsonl", "read-only", "--force"])


@case("export", "directory")
def _(lab):
    d = lab.root / "outdir"
    d.mkdir()
    return Spec(export(lab, d), ["outdir", "directory"])


@case("export", "path-under-a-regular-file")
def _(lab):
    f = lab.file("plain.txt", "x\n")
    return Spec(export(lab, f / "out.jsonl"), ["plain.txt"])


@case("export", "onto-the-lab-database")
def _(lab):
    return Spec(export(lab, lab.db), ["lab.db", "database"])


@case("export", "onto-an-input-symlink-loop")
def _(lab):
    p = lab.root / "loop.jsonl"
    p.symlink_to(p)
    return Spec(export(lab, p), ["loop.jsonl"])


@case("export", "missing-format")
def _(lab):
    return Spec(data("export", str(lab.root / "x.jsonl")), ["--format"])


# ---------------------------------------------------------------- configs


def train(kind: str, *argv: str) -> list[str]:
    return ["train", kind, "--quiet", *argv]


@case("config", "config-is-a-directory")
def _(lab):
    d = lab.root / "conf.toml"
    d.mkdir()
    return Spec(train("rm", "--config", str(d)), ["conf.toml", "directory"])


@case("config", "config-not-utf8")
def _(lab):
    f = lab.file("latin.toml", "name = \"caf\u00e9\"\n".encode("latin-1"))
    return Spec(train("rm", "--config", str(f)), ["latin.toml", "UTF-8"])


@case("config", "config-bad-toml")
def _(lab):
    f = lab.file("bad.toml", "epochs = 2\nlearning_rate 0.1\n")
    return Spec(train("rm", "--config", str(f)), ["bad.toml", "line 2"])


@case("config", "config-unknown-key")
def _(lab):
    f = lab.file("unk.toml", "epochs = 2\nlearnig_rate = 0.1\n")
    return Spec(train("rm", "--config", str(f)), ["unk.toml", "learnig_rate"])


@case("config", "config-unknown-section-key")
def _(lab):
    f = lab.file("unk2.toml", "[lora]\nrank = 4\n")
    return Spec(train("rm", "--config", str(f)), ["unk2.toml", "lora.rank"])


@case("config", "config-wrong-type")
def _(lab):
    f = lab.file("type.toml", 'epochs = "three"\n')
    return Spec(train("rm", "--config", str(f)), ["type.toml", "epochs"])


@case("config", "config-missing-file")
def _(lab):
    return Spec(train("rm", "--config", str(lab.root / "none.toml")), ["none.toml"])


@case("config", "config-nan-learning-rate")
def _(lab):
    f = lab.file("nan.toml", "learning_rate = nan\n")
    return Spec(train("rm", "--config", str(f)), ["nan.toml", "learning_rate"])


@case("config", "rm-batch-size-0")
def _(lab):
    return Spec(train("rm", "--set", "batch_size=0", "--set", f"base_model={lab.tiny_model}"), ["batch_size"])


@case("config", "rm-lora-r-negative")
def _(lab):
    return Spec(train("rm", "--set", "lora.r=-1", "--set", f"base_model={lab.tiny_model}"), ["lora.r"])


@case("config", "rm-epochs-0")
def _(lab):
    return Spec(train("rm", "--set", "epochs=0", "--set", f"base_model={lab.tiny_model}"), ["epochs"])


@case("config", "rm-negative-learning-rate")
def _(lab):
    return Spec(train("rm", "--set", "learning_rate=-0.001", "--set", f"base_model={lab.tiny_model}"),
                ["learning_rate"])


@case("config", "rm-eval-fraction-above-1")
def _(lab):
    return Spec(train("rm", "--set", "eval_fraction=1.5", "--set", f"base_model={lab.tiny_model}"),
                ["eval_fraction"])


@case("config", "rm-ties-unknown")
def _(lab):
    return Spec(train("rm", "--set", "ties=maybe", "--set", f"base_model={lab.tiny_model}"), ["ties"])


@case("config", "rm-missing-model-folder")
def _(lab):
    return Spec(train("rm", "--set", f"base_model={lab.root / 'no-such-model'}"), ["no-such-model"])


@case("config", "rm-model-folder-not-a-model")
def _(lab):
    d = lab.root / "empty-model"
    d.mkdir()
    return Spec(train("rm", "--set", f"base_model={d}"), ["empty-model", "config.json"])


@case("config", "rm-unknown-model-name")
def _(lab):
    return Spec(["--model", "gpt-17", *train("rm")], ["gpt-17"])


@case("config", "set-without-equals")
def _(lab):
    return Spec(train("rm", "--set", "epochs"), ["epochs", "key=value"])


@case("config", "ppo-missing-reward-run")
def _(lab):
    return Spec(train("ppo", "--set", f"base_model={lab.tiny_model}"), ["reward_run"])


@case("config", "ppo-reward-run-unknown-id")
def _(lab):
    return Spec(train("ppo", "--set", "reward_run=rm-20260101-0000-dead", "--set", f"base_model={lab.tiny_model}"),
                ["rm-20260101-0000-dead"])


@case("config", "ppo-reward-run-is-a-failed-rm")
def _(lab):
    return Spec(train("ppo", "--set", "reward_run=rm-failed-0001", "--set", f"base_model={lab.tiny_model}"),
                ["rm-failed-0001", "failed"])


@case("config", "ppo-reward-run-is-a-ppo-run")
def _(lab):
    return Spec(train("ppo", "--set", "reward_run=ppo-old-0001", "--set", f"base_model={lab.tiny_model}"),
                ["ppo-old-0001", "ppo"])


@case("config", "ppo-batch-size-0")
def _(lab):
    return Spec(train("ppo", "--set", "batch_size=0", "--set", "reward_run=rm-done-0001",
                      "--set", f"base_model={lab.tiny_model}"), ["batch_size"])


@case("config", "ppo-lora-r-negative")
def _(lab):
    return Spec(train("ppo", "--set", "lora.r=-1", "--set", "reward_run=rm-done-0001",
                      "--set", f"base_model={lab.tiny_model}"), ["lora.r"])


@case("config", "ppo-minibatch-larger-than-batch")
def _(lab):
    return Spec(train("ppo", "--set", "minibatch_size=16", "--set", "batch_size=4", "--set", "reward_run=rm-done-0001",
                      "--set", f"base_model={lab.tiny_model}"), ["minibatch_size"])


@case("config", "ppo-ensemble-mode-unknown")
def _(lab):
    return Spec(train("ppo", "--set", "ensemble_mode=median", "--set", "reward_run=rm-done-0001",
                      "--set", f"base_model={lab.tiny_model}"), ["ensemble_mode"])


@case("config", "ppo-prompt-split-unknown")
def _(lab):
    return Spec(train("ppo", "--set", "prompt_split=dev", "--set", "reward_run=rm-done-0001",
                      "--set", f"base_model={lab.tiny_model}"), ["prompt_split"])


@case("config", "ppo-missing-model-folder")
def _(lab):
    return Spec(train("ppo", "--set", "reward_run=rm-done-0001", "--set", f"base_model={lab.root / 'gone'}"),
                ["gone"])


@case("config", "ppo-resume-unknown-run")
def _(lab):
    return Spec(train("ppo", "--resume", "ppo-20990101-0000-beef"), ["ppo-20990101-0000-beef", "tuilab runs list"])


@case("config", "ppo-resume-an-rm-run")
def _(lab):
    return Spec(train("ppo", "--resume", "rm-done-0001"), ["rm-done-0001"])


# ---------------------------------------------------------------- databases


def foreign_db(lab: Lab) -> Path:
    return lab.sqlite("other-app.db", "CREATE TABLE contacts (id INTEGER PRIMARY KEY, name TEXT);"
                      "INSERT INTO contacts (name) VALUES ('ada'), ('grace');")


def newer_db(lab: Lab) -> Path:
    path = lab.root / "newer.db"
    shutil.copy(lab.db, path)
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode = DELETE")
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    return path


def corrupt_db(lab: Lab) -> Path:
    """The lab's database with one b-tree page overwritten by garbage."""
    path = lab.root / "corrupt.db"
    shutil.copy(lab.db, path)
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode = DELETE")
    page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    root = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 'prompts'").fetchone()[0]
    conn.close()
    with open(path, "r+b") as fh:
        fh.seek((root - 1) * page_size)
        fh.write(b"\xa5" * page_size)
    return path


def text_db(lab: Lab) -> Path:
    return lab.file("notes.txt", "these are my notes, not a database\n" * 50)


@case("db", "foreign-sqlite-data-stats")
def _(lab):
    return Spec(["--db", str(foreign_db(lab)), "data", "stats"], ["other-app.db", "not a tuilab"])


@case("db", "foreign-sqlite-data-import")
def _(lab):
    f = lab.file("ok.jsonl", '{"prompt": "a"}\n')
    return Spec(["--db", str(foreign_db(lab)), "data", "import", str(f)], ["other-app.db", "not a tuilab"])


@case("db", "foreign-sqlite-train-rm")
def _(lab):
    return Spec(["--db", str(foreign_db(lab)), *train("rm", "--set", f"base_model={lab.tiny_model}")],
                ["other-app.db", "not a tuilab"])


@case("db", "foreign-sqlite-runs-list")
def _(lab):
    return Spec(["--db", str(foreign_db(lab)), "runs", "list"], ["other-app.db", "not a tuilab"])


@case("db", "foreign-sqlite-ui")
def _(lab):
    return Spec(["--db", str(foreign_db(lab)), "--model", str(lab.tiny_model)], ["other-app.db", "not a tuilab"])


@case("db", "newer-schema-data-stats")
def _(lab):
    return Spec(["--db", str(newer_db(lab)), "data", "stats"], ["newer.db", "99"])


@case("db", "newer-schema-export")
def _(lab):
    return Spec(["--db", str(newer_db(lab)), *export(lab, lab.root / "out.jsonl")], ["newer.db", "99"])


@case("db", "newer-schema-ui")
def _(lab):
    return Spec(["--db", str(newer_db(lab)), "--model", str(lab.tiny_model)], ["newer.db", "99"])


@case("db", "text-file-as-db-stats")
def _(lab):
    return Spec(["--db", str(text_db(lab)), "data", "stats"], ["notes.txt", "not a SQLite"])


@case("db", "text-file-as-db-train-rm")
def _(lab):
    return Spec(["--db", str(text_db(lab)), *train("rm", "--set", f"base_model={lab.tiny_model}")],
                ["notes.txt", "not a SQLite"])


@case("db", "db-path-under-a-regular-file")
def _(lab):
    f = lab.file("plain.txt", "x\n")
    return Spec(["--db", str(f / "lab.db"), "data", "stats"], ["plain.txt"])


@case("db", "db-is-a-directory")
def _(lab):
    d = lab.root / "dbdir"
    d.mkdir()
    return Spec(["--db", str(d), "data", "stats"], ["dbdir", "directory"])


@case("db", "home-is-a-regular-file")
def _(lab):
    f = lab.file("home.txt", "not a folder\n")
    return Spec(["--home", str(f), "data", "stats"], ["home.txt", "not a folder"])


@case("db", "text-file-as-db-ui")
def _(lab):
    return Spec(["--db", str(text_db(lab)), "--model", str(lab.tiny_model)], ["notes.txt", "not a SQLite"])


@case("db", "db-path-under-a-regular-file-ui")
def _(lab):
    f = lab.file("plain.txt", "x\n")
    return Spec(["--db", str(f / "lab.db"), "--model", str(lab.tiny_model)], ["plain.txt"])


@case("db", "corrupt-page-data-stats")
def _(lab):
    return Spec(["--db", str(corrupt_db(lab)), "data", "stats"], ["corrupt.db"])


@case("db", "corrupt-page-export")
def _(lab):
    return Spec(["--db", str(corrupt_db(lab)), *export(lab, lab.root / "out.jsonl")], ["corrupt.db"])


@case("db", "corrupt-page-db-check")
def _(lab):
    return Spec(["--db", str(corrupt_db(lab)), "db", "check"], ["corrupt.db"])


@case("db", "corrupt-page-ui")
def _(lab):
    return Spec(["--db", str(corrupt_db(lab)), "--model", str(lab.tiny_model)], ["corrupt.db"])


@case("db", "truncated-database")
def _(lab):
    path = lab.root / "half.db"
    raw = lab.db.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])
    return Spec(["--db", str(path), "data", "stats"], ["half.db"])


@case("db", "tuilab-db-missing-a-table")
def _(lab):
    path = lab.root / "dropped.db"
    shutil.copy(lab.db, path)
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode = DELETE")
    conn.execute("DROP TABLE samples")
    conn.close()
    return Spec(["--db", str(path), "data", "stats"], ["dropped.db", "samples"])


@case("db", "backup-onto-existing-file")
def _(lab):
    f = lab.file("backup.db", "an older backup I keep\n")
    return Spec(["db", "backup", str(f)], ["backup.db", "exists"])


@case("db", "backup-of-foreign-db")
def _(lab):
    return Spec(["--db", str(foreign_db(lab)), "db", "backup", str(lab.root / "copy.db")],
                ["other-app.db", "not a tuilab"])


@case("db", "runs-show-unknown")
def _(lab):
    return Spec(["runs", "show", "rm-nope"], ["rm-nope"])


@case("db", "runs-delete-unknown")
def _(lab):
    return Spec(["runs", "delete", "rm-nope", "--yes"], ["rm-nope"])


@case("db", "init-on-foreign-without-force")
def _(lab):
    return Spec(["--db", str(foreign_db(lab)), "db", "init"], ["other-app.db", "--force"])


# ---------------------------------------------------------------- models


@case("model", "import-corrupt-gguf")
def _(lab):
    f = lab.file("broken.gguf", os.urandom(4096))
    return Spec(["models", "import", str(f)], ["broken.gguf"])


@case("model", "import-gguf-magic-then-garbage")
def _(lab):
    f = lab.file("trunc.gguf", b"GGUF\x03\x00\x00\x00" + os.urandom(64))
    return Spec(["models", "import", str(f)], ["trunc.gguf"])


@case("model", "import-empty-folder")
def _(lab):
    d = lab.root / "emptymodel"
    d.mkdir()
    return Spec(["models", "import", str(d)], ["emptymodel", "config.json"])


@case("model", "import-folder-with-bad-config-json")
def _(lab):
    d = lab.root / "badcfg"
    d.mkdir()
    (d / "config.json").write_text("{not json")
    (d / "model.safetensors").write_bytes(b"\x00" * 16)
    (d / "tokenizer.json").write_text("{}")
    return Spec(["models", "import", str(d)], ["config.json"])


@case("model", "import-text-file")
def _(lab):
    f = lab.file("readme.txt", "hello\n")
    return Spec(["models", "import", str(f)], ["readme.txt"])


@case("model", "import-missing-path")
def _(lab):
    return Spec(["models", "import", str(lab.root / "nothing.gguf")], ["nothing.gguf"])


# ---------------------------------------------------------------- the runner


def snapshot(root: Path) -> dict[str, str]:
    """Every path under `root` (links not followed) with its type, mode and content hash."""
    out: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            st = os.lstat(p)
            rel = str(p.relative_to(root))
            if stat.S_ISLNK(st.st_mode):
                out[rel] = "link " + os.readlink(p)
            elif stat.S_ISREG(st.st_mode):
                with open(p, "rb") as fh:
                    digest = hashlib.file_digest(fh, "sha256").hexdigest()
                out[rel] = f"file {st.st_mode & 0o7777:o} {digest}"
            elif stat.S_ISDIR(st.st_mode):
                out[rel] = "dir"
            else:
                out[rel] = f"special {stat.S_IFMT(st.st_mode):o}"
    return out


@pytest.fixture(scope="module")
def template(tmp_path_factory, tiny_model_dir) -> Path:
    """A lab with pairs, prompts, a completed and a failed reward run and a PPO run."""
    from tuilab.store.importing import import_file
    from tuilab.store.runs import create_run, set_run_status

    home = tmp_path_factory.mktemp("template") / "lab"
    db = open_db(home / "db" / "lab.db")
    import_file(db, FIXTURES / "trl_standard.jsonl")
    import_file(db, FIXTURES / "prompts.jsonl")
    done = home / "models" / "runs" / "rm-done-0001"
    done.mkdir(parents=True)
    (done / "reward.json").write_text("{}")
    for run_id, kind, status in (("rm-done-0001", "rm", "completed"), ("rm-failed-0001", "rm", "failed"),
                                 ("ppo-old-0001", "ppo", "cancelled")):
        create_run(db, kind, {}, run_id=run_id, output_dir=str(home / "models" / "runs" / run_id))
        set_run_status(db, run_id, status)
    db.conn.close()
    return home


def run_tuilab(spec: Spec, home: Path) -> subprocess.CompletedProcess:
    argv = ["--home", str(home), *spec.argv]
    env = {k: v for k, v in os.environ.items() if not k.startswith("TUILAB_")}
    env["PYTHONPATH"] = str(Path(__file__).parents[2])
    return subprocess.run(
        [*spec.prefix, sys.executable, "-m", "tuilab", *argv], capture_output=True, text=True, env=env,
        cwd=home.parent, timeout=TIMEOUT_S, stdin=subprocess.DEVNULL,
    )


@pytest.mark.parametrize("c", [pytest.param(c, id=f"{c.klass}:{c.name}", marks=c.marks) for c in CASES])
def test_hostile_input(c: Case, template: Path, tmp_path: Path, tiny_model_dir: Path) -> None:
    root = tmp_path / "t"
    home = root / "lab"
    shutil.copytree(template, home, symlinks=True)
    lab = Lab(root, home, tiny_model_dir)
    spec = c.build(lab)
    before = snapshot(root)
    try:
        proc = run_tuilab(spec, home)
    except subprocess.TimeoutExpired:
        pytest.fail(f"no answer within {TIMEOUT_S}s (blocked on a FIFO or device?)")
    after = snapshot(root)
    err = proc.stderr.strip()
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert proc.returncode not in (0, None), f"exit 0; stdout: {proc.stdout[-500:]!r} stderr: {err[-500:]!r}"
    lines = err.splitlines()
    assert len(lines) == 1, f"stderr should be one line, got {len(lines)}:\n{err[-2000:]}"
    assert lines[0].startswith("tuilab: "), lines[0]
    missing = [n for n in spec.names if n.lower() not in lines[0].lower()]
    assert not missing, f"the message does not name {missing}: {lines[0]}"
    changed = {k: (before.get(k), after.get(k)) for k in before.keys() | after.keys() if before.get(k) != after.get(k)}
    assert not changed, f"files changed or created: {changed}"


def test_the_campaign_is_large_enough() -> None:
    assert len(CASES) >= 60
    assert {c.klass for c in CASES} == {"data", "export", "config", "db", "model"}
