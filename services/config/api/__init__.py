"""The config service's HTTP API."""
