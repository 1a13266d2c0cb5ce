"""``python -m ucc_tune.evaluate``: the command of ``ucc_tune.trained.evaluate``."""

from ucc_tune.trained.evaluate import main

if __name__ == "__main__":
    raise SystemExit(main())
