"""Cluster entry point for ``ray job submit``:

    ray job submit --working-dir . --runtime-env cluster/runtime_env.yaml -- \
        python -m llmrl.job configs/minigrid/simple_doorkey.yaml run.out_dir=/mnt/shared/runs

It runs the same training graph as ``llmrl train`` but connects to the running cluster (``address=auto``
unless ``resources.address`` is given). Progress lines go to stdout, which Ray streams into the job's logs.
"""

from __future__ import annotations

import sys

from llmrl.cli import main as cli_main


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args:
        print("usage: python -m llmrl.job CONFIG [key=value ...]", file=sys.stderr)
        return 2
    if not any(a.startswith("resources.address=") for a in args[1:]):
        args.append("resources.address=auto")
    return cli_main(["train", *args])


if __name__ == "__main__":
    sys.exit(main())
