"""The Kafka adapter: topic names and setup, the wire format, and the relay."""
