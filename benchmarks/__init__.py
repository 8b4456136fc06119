"""Performance scripts that print tables (`python -m benchmarks.<name>`); not tests."""
