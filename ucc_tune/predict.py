"""``python -m ucc_tune.predict``: the command of ``ucc_tune.trained.predict``."""

from ucc_tune.trained.predict import main

if __name__ == "__main__":
    raise SystemExit(main())
