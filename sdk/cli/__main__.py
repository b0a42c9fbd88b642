"""``python -m sdk.cli``: the ``celeriac`` command without its console script."""

from sdk.cli import main

if __name__ == "__main__":
    main(prog_name="celeriac")
