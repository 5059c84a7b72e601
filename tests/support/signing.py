"""The secrets a test deployment is given outside development.

The development issuer's secret is published, so only `ENVIRONMENT=development` accepts it;
a test service (`ENVIRONMENT=test`) is given these, as a deployment is given its own: the
HS256 secret tokens are signed with, the key of the callback URLs' MACs, and the secret
Tavus signs the mentor's tool calls with.
"""

from __future__ import annotations

TEST_JWT_SECRET = "facetoface-tests-signing-secret-0f3a9c2e7b1d4856"
TEST_CALLBACK_SIGNING_SECRET = "test-callback-signing-secret-0123456789abcdef"
TEST_TOOL_SECRET = "test-tool-secret-5d1f0c8e2a7b4963a0e1f2d3c4b5a697"
