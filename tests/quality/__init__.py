"""Data-quality tests (a package, so that its conftest does not shadow the others as `conftest`)."""
