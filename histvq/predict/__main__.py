"""``python -m histvq.predict``: see :mod:`histvq.predict.app`."""

from histvq.predict.app import main

if __name__ == "__main__":
    main()
