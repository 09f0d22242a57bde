"""Frames -> outgoing messages, one module per demo (`text`, `image`, `race`), and the producers that
turn a sampler's frames into deferred renders for the engine. The message type itself is `app.render.message`."""
