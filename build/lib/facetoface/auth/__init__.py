"""Bearer-token authentication: Supabase-style JWTs (JWKS or legacy HS256) and a dev issuer."""
