"""Test-wide defaults. Servers the tests start do not prewarm the replay cache (it would add background jobs to
every engine count); tests/app/test_prewarm.py turns it on where it is the point."""

import os

os.environ.setdefault("THEATER_PREWARM", "0")
