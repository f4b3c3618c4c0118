-- A streamed answer's message (DESIGN 10.2): posted first, then edited as the model writes.
ALTER TABLE inbox ADD COLUMN stream_message_id TEXT;
