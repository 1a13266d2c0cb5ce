"""``python -m ucc_tune.search``: see ``ucc_tune.search.command``."""

from ucc_tune.search.command import main

if __name__ == "__main__":
    raise SystemExit(main())
