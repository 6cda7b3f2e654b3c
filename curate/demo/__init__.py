"""The bundled sample pool: synthetic images, captions, a loopback server (demo and tests)."""
