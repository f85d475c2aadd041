"""``python -m runbridge ...``: the same commands as the ``runbridge`` console script."""

from .cli import main

if __name__ == "__main__":
    main(prog_name="runbridge")
