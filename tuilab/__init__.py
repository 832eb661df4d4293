"""tuilab: a terminal RLHF lab."""

__version__ = "0.1.0"


def _import_sqlite_utils_without_pandas() -> None:
    """Import sqlite-utils once, with pandas hidden from it.

    sqlite-utils imports pandas whenever it is installed, only to map pandas
    timestamps to a column type the lab never writes. Ray Tune (the optional
    `tuilab[ray]` extra, also in `dev`) installs pandas, which then cost every
    process that opens the lab about 1.5 s of imports and ~100 MB. Hidden for
    this one import; pandas stays importable for whoever needs it (Ray Tune).
    """
    import sys

    if "sqlite_utils" in sys.modules or "pandas" in sys.modules:
        return
    sys.modules["pandas"] = None  # type: ignore[assignment]  # `import pandas` raises ImportError
    try:
        import sqlite_utils  # noqa: F401
    except ImportError:  # not installed: the store says so where it is used
        pass
    finally:
        if sys.modules.get("pandas", 0) is None:
            del sys.modules["pandas"]


_import_sqlite_utils_without_pandas()
