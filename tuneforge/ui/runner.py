"""`python -m tuneforge.ui.runner JOB.json`: runs one job's `tuneforge` command (`tuneforge.ui.jobs`)
and writes its exit code into the record when it ends. It is the page's detached process: it
outlives the page and the `tuneforge ui` server, and a Ctrl-C sent to its process group reaches the
command, which stops as it would in a terminal."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

# only the standard library here: an import of tuneforge's packages would load torch and its
# libraries in this waiting process, and their import-time notices would land in the job's output


def main(record_path: str) -> int:
    record = Path(record_path)
    argv = json.loads(record.read_text(encoding="utf-8"))["argv"]
    try:  # started before this ignores signals: an ignored signal stays ignored in a child
        child = subprocess.Popen([sys.executable, "-m", "tuneforge", *argv])
    except OSError as e:
        print(f"error: could not start tuneforge: {e}", file=sys.stderr)
        finish(record, 127)
        return 0
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the command gets the group's Ctrl-C; this waits for it
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    code = child.wait()
    finish(record, code)
    return 0


def finish(record: Path, exit_code: int) -> None:
    """The last step: the exit code into the job's record, atomically."""
    data = json.loads(record.read_text(encoding="utf-8"))
    data.update(exit_code=exit_code, ended=time.time())
    tmp = record.with_name(record.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1), encoding="utf-8")
    os.replace(tmp, record)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
