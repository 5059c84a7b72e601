"""The HS256 secret tests sign tokens with outside development.

The development issuer's secret is published, so only `ENVIRONMENT=development` accepts it;
a test service (`ENVIRONMENT=test`) is given this one, as a deployment is given its project's.
"""

from __future__ import annotations

TEST_JWT_SECRET = "facetoface-tests-signing-secret-0f3a9c2e7b1d4856"
