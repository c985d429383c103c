"""Test support: the local Kafka-protocol broker and other harness pieces."""
