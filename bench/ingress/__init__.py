"""The ingress add-on benchmark: ``python -m bench.ingress`` (see __main__)."""
