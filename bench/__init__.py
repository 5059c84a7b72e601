"""The benchmark of the service (`make bench`); see bench/README.md. Not part of `make test`."""
