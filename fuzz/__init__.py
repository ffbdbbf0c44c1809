"""Atheris fuzz targets: run each as ``python -m fuzz.fuzz_<name>`` (see ``make fuzz``)."""
