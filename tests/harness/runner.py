"""Run cloud-init commands in order inside the sandbox and record each result.

Called by ``sandbox.Machine`` inside the chroot:
``runner.py JOB.json RESULTS.json``. JOB holds the environment, the command
prefix (python and cloud-init's entry script) and the commands.
"""

import json
import subprocess
import sys
import time


def main() -> int:
    """Run the job's commands; write a list of results; exit 0 unless broken."""
    with open(sys.argv[1]) as f:
        job = json.load(f)
    results = []
    for args in job["commands"]:
        started = time.monotonic()
        # ("--python", SCRIPT, ARG...): a script on the release's interpreter
        argv = [job["argv0"][0], *args[1:]] if args[:1] == ["--python"] else [*job["argv0"], *args]
        proc = subprocess.run(
            argv,
            env=job["env"],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        results.append(
            {
                "args": args,
                "returncode": proc.returncode,
                "stdout": proc.stdout,
                "stderr": proc.stderr,
                "seconds": time.monotonic() - started,
            }
        )
    with open(sys.argv[2], "w") as f:
        json.dump(results, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
