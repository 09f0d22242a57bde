"""How fast the player shows frames: one source for the page's player (templates/player.html renders the speed
menu and hands the base rate to static/player.js) and the GIF export, which times its frames the same way."""

from __future__ import annotations

BASE_FPS = 8  # frames a second at speed 1
SPEEDS = (0.25, 0.5, 1.0, 2.0, 4.0)  # the player's speed menu
MIN_SPEED, MAX_SPEED = SPEEDS[0], SPEEDS[-1]
