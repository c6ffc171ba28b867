"""`python -m perps_bot.monitoring.line_writer SETUP`: the process that writes a
backtest's run-log lines (monitoring.text_process). An entry point of its own: it
turns the compiled set on (perps_bot.compiled) when the run's process runs it, which
must happen before the line recipes are imported.
"""

import json
import sys

from perps_bot.storage import child_process


def main() -> None:
    setup = json.loads(sys.argv[1])
    if setup.get("compiled"):
        from perps_bot import compiled

        compiled.activate()
    from perps_bot.monitoring.text_process import serve

    child_process.settle()
    serve(setup, sys.stdin.buffer, sys.stdout.buffer)


if __name__ == "__main__":
    main()
    child_process.leave()
