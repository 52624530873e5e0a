"""Helpers for the integration tests: real servers, clients, configs, processes."""
