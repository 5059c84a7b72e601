"""The web console at `/console`: pages and small ES modules shipped in the package, calling
the JSON API with the signed-in user's bearer token; and the operators' API (`ops/`)."""
