"""Opening the lab again in a process that holds a connection must not blind it to other processes.

POSIX drops every lock a process holds on a file when any descriptor of that
file is closed. Were `inspect_db` to read the header with a plain open/close,
a process opening the lab a second time (the UI does, for each worker) would
lose its connections' locks; the next process to close its inspecting
connection would then find itself alone, checkpoint and delete the WAL and its
index under the first, which from then on never sees what others write.
"""

from __future__ import annotations

import subprocess
import sys

from tuilab.store import runs
from tuilab.store.db import open_db

WRITER = """
import sys
from tuilab.store.db import open_db
from tuilab.store import runs
db = open_db(sys.argv[1])
runs.create_run(db, "rm", {}, run_id="rm-20261201-0000-abcd")
print("written", flush=True)
sys.stdin.read()  # stay open (no checkpoint on close) until the test is done
"""


def test_a_process_that_opens_the_lab_twice_still_sees_another_process_write(tmp_path):
    path = tmp_path / "db" / "lab.db"
    first = open_db(path)
    runs.create_run(first, "rm", {}, run_id="rm-20261201-0000-0001")
    second = open_db(path)  # this process opens the lab again while `first` is open
    second.conn.close()
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout.readline().strip() == "written"
        seen = {r.id for r in runs.list_runs(first)}
        assert seen == {"rm-20261201-0000-0001", "rm-20261201-0000-abcd"}, seen
        third = open_db(path)
        assert {r.id for r in runs.list_runs(third)} == seen
        third.conn.close()
    finally:
        writer.communicate("", timeout=30)
        first.conn.close()
