"""`pforte` commands for test set-up, many in one process: `python cli_worker.py` reads one JSON line per
command ({"args": [...], "input": str | null}) and answers one JSON line ({"returncode", "stdout",
"stderr"}). Each command goes through the real entry point (app.entry.main) and builds its own app, as
a `pforte` process would; the app's imports are paid once instead of once per command (seconds each).

The protocol has file descriptors of its own: what a command writes to the real stdout goes to stderr."""
from __future__ import annotations

import gc
import json
import logging
import os
import sys
import traceback

from click.testing import CliRunner

from app.entry import main


def run(args: list[str], input: str | None) -> dict:
    handlers = list(logging.root.handlers)
    with CliRunner().isolation(input=input) as streams:
        out, err = streams[0], streams[1]
        sys.argv = ["pforte", *args]
        try:
            main()
            code = 0
        except SystemExit as exc:
            if exc.code is None or isinstance(exc.code, int):
                code = exc.code or 0
            else:
                print(exc.code, file=sys.stderr)
                code = 1
        except Exception:  # noqa: BLE001 - what the interpreter does with an uncaught exception
            traceback.print_exc()
            code = 1
        sys.stdout.flush()
        sys.stderr.flush()
        answer = {"returncode": code, "stdout": out.getvalue().decode(errors="replace"),
                  "stderr": err.getvalue().decode(errors="replace")}
    logging.root.handlers[:] = handlers  # a handler on the command's captured stream would outlive it
    gc.collect()  # the command's app and its database pool: a `pforte` process would close them on exit
    return answer


def serve() -> None:
    requests = os.fdopen(os.dup(0), "r")
    answers = os.fdopen(os.dup(1), "w")
    os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
    os.dup2(2, 1)
    for line in requests:
        command = json.loads(line)
        answers.write(json.dumps(run(command["args"], command.get("input"))) + "\n")
        answers.flush()


if __name__ == "__main__":
    serve()
