"""``python -m ucc_tune.export``: the command of ``ucc_tune.trained.export``."""

from ucc_tune.trained.export import main

if __name__ == "__main__":
    raise SystemExit(main())
